//! The `lugo` command: run a script, a chunk or standard input, or the
//! REPL (`src/repl.rs`) on a terminal and with `-i`.

#![deny(unsafe_op_in_unsafe_fn)]

mod plain;
mod repl;

use std::io::{IsTerminal, Read};

// mimalloc: Lua allocates small blocks at a high rate from the M threads;
// glibc grows per-thread arenas with an mprotect per step.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

use clap::{ArgAction, Parser};
use mlua::{Function, Lua, MultiValue, Table, Value};

/// What `lugo --help` says of the environment and the signals.
const ENVIRONMENT: &str = "\
Environment:
  LUGO_MAXPROCS=N      number of Ps (as --procs)
  LUGO_DEBUG=k=v,...   diagnostics, comma-separated (Go's GODEBUG):
                         schedtrace=MS   a SCHED line on stderr every MS milliseconds
                         scheddetail=1   with schedtrace: a line per P and per goroutine
                         flightrecorder=1  keep the scheduler's last events; write them to
                                         lugo-flight-<pid>.json on a panic, a deadlock,
                                         SIGQUIT or runtime.flightrecord(path)
                         leakcheck=1     look for leaked goroutines every second; report
                                         each new one on stderr (=2: end them too)
                         leakcheckperiod=MS  that period, in milliseconds
  LUGO_TRACE=FILE      as --trace
  LUGO_HISTORY=FILE    the REPL's history file (default ~/.lugo_history; empty: none)

Signals:
  SIGQUIT (Ctrl-\\)     print every goroutine's stack and exit 2; in the REPL,
                       while a line runs: print the goroutine listing, go on
  SIGUSR1              print every goroutine's stack and go on
  SIGINT (Ctrl-C)      in the REPL: stop the running line";

#[derive(Parser)]
#[command(
    name = "lugo",
    about = "A Lua 5.4 runtime in which coroutines are goroutines",
    override_usage = "lugo [options] [script [args]]",
    disable_version_flag = true,
    after_help = ENVIRONMENT
)]
struct Cli {
    /// Run this chunk (may be given several times; runs before the script)
    #[arg(short = 'e', value_name = "chunk", action = ArgAction::Append)]
    exec: Vec<String>,

    /// Enter the REPL after running the script
    #[arg(short = 'i')]
    interactive: bool,

    /// Number of Ps, goroutine-running threads (default: number of CPUs)
    #[arg(long, env = "LUGO_MAXPROCS", value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    procs: Option<u16>,

    /// Run every actor as a sandbox for untrusted code (no files,
    /// processes, network or debug library)
    #[arg(long)]
    sandbox: bool,

    /// Limit each actor's memory (its Lua heap and what the runtime holds
    /// for it) to this many bytes; K, M and G suffixes are allowed
    #[arg(long, value_name = "BYTES", value_parser = parse_bytes)]
    memory_limit: Option<usize>,

    /// Stop each actor after this many seconds of running time
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    cpu_budget: Option<std::time::Duration>,

    /// Run in a plain Lua state of lugo's own Lua build, with none of
    /// lugo's code (no goroutines): the baseline of tests and benchmarks
    #[arg(long)]
    plain: bool,

    /// Write a scheduler trace to FILE when the program ends (Chrome's
    /// trace-event JSON: open it in ui.perfetto.dev or chrome://tracing)
    #[arg(long, env = "LUGO_TRACE", value_name = "FILE")]
    trace: Option<std::path::PathBuf>,

    /// Sample the Lua stacks of running goroutines about 100 times a
    /// second and write them to FILE when the program ends: folded stacks,
    /// or a flame graph if FILE ends in .svg
    #[arg(long, value_name = "FILE")]
    cpuprofile: Option<std::path::PathBuf>,

    /// Print the version and exit
    #[arg(short = 'v', long = "version")]
    version: bool,

    /// The script (`-` for standard input) and its arguments
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "script [args]"
    )]
    rest: Vec<String>,
}

const VERSION: &str = concat!("lugo ", env!("CARGO_PKG_VERSION"), " (Lua 5.4)");

/// `--memory-limit`: bytes, with an optional K, M or G suffix (powers of
/// 1024).
fn parse_bytes(s: &str) -> Result<usize, String> {
    let (num, mul) = match s.char_indices().last() {
        Some((i, 'K' | 'k')) => (&s[..i], 1 << 10),
        Some((i, 'M' | 'm')) => (&s[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<usize>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("not a positive number of bytes: {s}"))
}

/// `--cpu-budget`: positive seconds.
fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    s.parse::<f64>()
        .ok()
        .filter(|d| d.is_finite() && *d > 0.0)
        .and_then(|d| std::time::Duration::try_from_secs_f64(d).ok())
        .ok_or_else(|| format!("not a positive number of seconds: {s}"))
}

/// The script at `path` (`-`: standard input) as a function.
fn load_script(rt: &lugo::Runtime, path: &str) -> Result<Function, String> {
    if path != "-" {
        return rt.load_file(path).map_err(|e| match e {
            lugo::Error::Lua(e) => load_error(e),
            other => other.to_string(),
        });
    }
    let mut buf = Vec::new();
    std::io::stdin()
        .read_to_end(&mut buf)
        .map_err(|e| format!("cannot read stdin: {e}"))?;
    rt.lua()
        .load(buf)
        .set_name("=stdin")
        .into_function()
        .map_err(load_error)
}

fn load_error(e: mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } | mlua::Error::RuntimeError(message) => message,
        other => other.to_string(),
    }
}

/// The global `arg`: argv with the script at index 0, as lua does.
fn arg_table(lua: &Lua, argv: &[String], script_at: usize) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (i, a) in argv.iter().enumerate() {
        t.raw_set(i as i64 - script_at as i64, a.as_str())?;
    }
    Ok(t)
}

fn run() -> Result<ExitCode, String> {
    let argv: Vec<String> = std::env::args().collect();
    let cli = Cli::parse();
    if cli.version {
        println!("{VERSION}");
        return Ok(ExitCode::SUCCESS);
    }
    // A script's name does not start with '-' ('-' alone is stdin): what
    // does is an option lugo does not know, which lua names too.
    if let Some(opt) = cli.rest.first().filter(|a| a.starts_with('-') && *a != "-") {
        return Err(format!(
            "unrecognized option '{opt}'\nusage: lugo [options] [script [args]] (see lugo --help)"
        ));
    }
    if cli.plain {
        let script = cli.rest.split_first().map(|(p, a)| (p.as_str(), a));
        let script_at = (argv.len() - cli.rest.len()).min(argv.len().saturating_sub(1));
        return Ok(plain::run(&cli.exec, script, &argv, script_at));
    }
    let mut rest = cli.rest.clone();
    let no_chunk = rest.is_empty() && cli.exec.is_empty();
    let interactive = cli.interactive || (no_chunk && std::io::stdin().is_terminal());
    if no_chunk && !interactive {
        rest.push("-".into());
    }
    let console = interactive.then(repl::Console::new);

    let mut builder = lugo::Runtime::builder().sandbox(cli.sandbox);
    if let Some(n) = cli.procs {
        builder = builder.procs(n as usize);
    }
    if let Some(bytes) = cli.memory_limit {
        builder = builder.memory_limit(bytes);
    }
    if let Some(budget) = cli.cpu_budget {
        builder = builder.cpu_budget(budget);
    }
    if let Some(console) = &console {
        builder = repl::configure(builder, console);
    }
    let rt = builder.build().map_err(|e| e.to_string())?;
    lugo::quit::install(rt.vm().clone(), console.is_some())
        .map_err(|e| format!("cannot install the SIGQUIT dump: {e}"))?;
    let lua = rt.lua();

    let mut chunks: Vec<Function> = Vec::new();
    for src in &cli.exec {
        let f = lua
            .load(src.as_str())
            .set_name("=(command line)")
            .into_function()
            .map_err(load_error)?;
        chunks.push(f);
    }
    let script_at = argv.len() - rest.len();
    let mut script_args = MultiValue::new();
    let mut has_script = false;
    if let Some((path, args)) = rest.split_first() {
        chunks.push(load_script(&rt, path)?);
        has_script = true;
        for a in args {
            script_args.push_back(Value::String(
                lua.create_string(a).map_err(|e| e.to_string())?,
            ));
        }
    }
    lua.globals()
        .set(
            "arg",
            arg_table(lua, &argv, script_at.min(argv.len() - 1)).map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;

    if let Some(console) = console {
        // As lua.c: the -e chunks, then the script with its arguments, each
        // on its own; an error is shown and the REPL starts all the same.
        let last = chunks.len();
        let startup = chunks
            .into_iter()
            .enumerate()
            .map(|(i, f)| {
                let args = if has_script && i + 1 == last {
                    std::mem::take(&mut script_args)
                } else {
                    MultiValue::new()
                };
                (f, args)
            })
            .collect();
        println!("{VERSION}  help() lists what lugo adds");
        repl::run(&rt, &console, startup);
    }

    // One chunk runs as the main goroutine's body itself, so its
    // tracebacks end as lua.c's do; several run in turn from a wrapper.
    let setup = || -> mlua::Result<Function> {
        if chunks.len() == 1 {
            return Ok(chunks.pop().expect("one chunk"));
        }
        lua.load(
            "local chunks = ...\n\
             return function(...)\n\
               for i = 1, #chunks - 1 do chunks[i]() end\n\
               return chunks[#chunks](...)\n\
             end",
        )
        .set_name(lugo_stdlib::FACE.hidden_source)
        .call(lua.create_sequence_from(chunks)?)
    };
    let main = setup().map_err(|e| e.to_string())?;
    if cli.cpuprofile.is_some() {
        lugo_vm::profile::start();
    }
    if cli.trace.is_some() {
        lugo_vm::trace::start_trace();
    }
    let outcome = rt.run(main, script_args).map_err(|e| e.to_string())?;
    if let Some(path) = &cli.trace {
        if let Err(e) = lugo_vm::trace::write(path) {
            eprintln!("lugo: cannot write the trace {}: {e}", path.display());
        }
    }
    if outcome.code() == 2 {
        // A panic or a deadlock: what the flight recorder kept, if it runs.
        if let Some(path) = lugo_vm::trace::dump_flight() {
            eprintln!("lugo: flight recorder written to {}", path.display());
        }
    }
    if let Some(path) = &cli.cpuprofile {
        if let Err(e) = write_profile(path) {
            eprintln!("lugo: cannot write the CPU profile {}: {e}", path.display());
        }
    }
    if let Some(report) = outcome.report() {
        eprint!("{report}");
    }
    // Other goroutines are dropped, as in Go. The states are closed, so
    // their finalizers run, as lua.c closes its state (not after a
    // deadlock, nor after `os.exit(code)` without `close`); a goroutine
    // that cannot be stopped soon (in a blocking call) is left behind.
    if rt.vm().close_at_exit() {
        rt.vm().close(std::time::Duration::from_millis(200));
    }
    // `exit` flushes C stdio, where Lua's print and io.write buffer.
    std::process::exit(outcome.code());
}

/// Writes the CPU profile taken so far to `path`: folded stacks (`a;b;c
/// 12` per line), or a flame graph (SVG, the `inferno` crate) when the
/// name ends in `.svg`.
fn write_profile(path: &std::path::Path) -> std::io::Result<()> {
    let samples = lugo_vm::profile::stop();
    let folded = lugo_vm::profile::folded(&samples);
    if path.extension().is_some_and(|e| e == "svg") {
        let mut opts = inferno::flamegraph::Options::default();
        opts.title = "lugo CPU profile".into();
        opts.count_name = "samples".into();
        let out = std::io::BufWriter::new(std::fs::File::create(path)?);
        inferno::flamegraph::from_lines(&mut opts, folded.lines(), out)
            .map_err(std::io::Error::other)
    } else {
        std::fs::write(path, folded)
    }
}

fn main() -> ExitCode {
    // As lua does: a write to a closed pipe ends the program (`lugo ... |
    // head -1`). Rust starts with SIGPIPE ignored, and `print` drops write
    // errors. Sockets are written with MSG_NOSIGNAL and get an error.
    // SAFETY: restoring a signal's default disposition at startup, before
    // any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    match run() {
        Ok(code) => code,
        Err(msg) => {
            eprintln!("lugo: {msg}");
            ExitCode::from(1)
        }
    }
}
