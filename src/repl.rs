//! The interactive REPL (`lugo` on a terminal, `lugo -i script.lua`).
//!
//! Each line runs as a goroutine of the main actor; goroutines started from
//! the prompt go on running while the next line is read. It owns the
//! terminal (rustyline), the `print` of every actor (through [`Console`]),
//! SIGINT and the process exit.
//!
//! A line, step by step:
//! 1. read it (`> `, or `>> ` while a chunk is incomplete); meanwhile
//!    `print` from goroutines goes above the prompt (console: prompt mode);
//! 2. compile, as lua.c does: `return <chunk>;` first, so an expression
//!    shows its values (`=expr` is `return expr`), else the chunk itself; a
//!    syntax error at `<eof>` means incomplete: read another line;
//! 3. run it with `Runtime::go` and wait in short slices, watching the
//!    SIGINT flag: on Ctrl-C, `Task::interrupt` (a running or parked
//!    goroutine stops at once), then wait at most [`INTERRUPT_GRACE`]: one
//!    inside a blocking call (`io.read`) stops only when the call returns,
//!    so the REPL may leave it behind;
//! 4. print the values (tab-separated; tables by their contents, lugo's
//!    values by what they are: `pretty`) or the error with
//!    its traceback, or a deadlock's dump: the REPL goes on in all cases.
//!
//! Exit: Ctrl-D (status 0) or the runtime ending, whichever goroutine calls
//! `os.exit` (its status), also while the prompt waits: a watcher thread
//! waits for the runtime's outcome. [`exit`] lets only one thread through,
//! puts the terminal back out of raw mode and prints what is queued.
//!
//! A chunk of several lines is one history entry. Rejected: a rustyline
//! `Validator` for multi-line input (the whole chunk edited in one buffer)
//! would drop lua.c's `>> ` prompt; printing through rustyline's printer
//! from the goroutine itself could block its actor (see `console`).

mod complete;
mod console;
mod help;
mod pretty;
mod sys;

use std::borrow::Cow;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use mlua::{Function, Lua, MultiValue};
use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{CompletionType, Editor};

pub use console::Console;
use console::Stream;

/// How long one wait on a running line lasts before the SIGINT flag is
/// checked again: Ctrl-C is seen within this.
const WAIT_SLICE: Duration = Duration::from_millis(20);

/// How long an interrupted line may take to stop before the REPL leaves
/// its goroutine behind (one inside a blocking call stops when it returns).
const INTERRUPT_GRACE: Duration = Duration::from_secs(1);

/// Entries kept in the history file.
const HISTORY_SIZE: usize = 1000;

/// The prompts, as lua.c's (`_PROMPT` and `_PROMPT2` override them).
const PROMPT: &str = "> ";
const PROMPT2: &str = ">> ";

/// Chunk name of the lines, as lua.c's: errors read `stdin:1: ...`.
const CHUNK_NAME: &str = "=stdin";

/// Adds the REPL's `print` (through `console`, in every actor) and its
/// report of background panics (printed; the runtime goes on) to `builder`.
pub fn configure(builder: lugo::Builder, console: &Arc<Console>) -> lugo::Builder {
    let on_panic = console.clone();
    let helped = console.clone();
    builder
        .function("print", console::print_function(console.clone()))
        .function("help", move |lua, what: mlua::Value| {
            helped.write(help::help(lua, what)?.as_bytes(), Stream::Stdout);
            Ok(())
        })
        .on_panic(move |report: &str| {
            on_panic.write(with_newline(report).as_bytes(), Stream::Stderr)
        })
}

/// Runs `startup` (the `-e` chunks and the script, in order, each with its
/// arguments; an error stops the rest), then reads and runs lines until
/// Ctrl-D or the runtime ends. Never returns: the process exits.
pub fn run(rt: &lugo::Runtime, console: &Arc<Console>, startup: Vec<(Function, MultiValue)>) -> ! {
    sys::save_terminal();
    let _ = CONSOLE.set(console.clone());
    if let Err(e) = sys::at_exit(on_process_exit) {
        fatal(console, &format!("cannot install the exit hook: {e}"));
    }
    if let Err(e) = sys::install_sigint() {
        fatal(console, &format!("cannot install the SIGINT handler: {e}"));
    }
    watch_outcome(rt, console);

    for (f, args) in startup {
        if !run_chunk(rt, console, f, args) {
            break;
        }
    }

    let config = match Config::builder()
        .max_history_size(HISTORY_SIZE)
        .and_then(|b| b.history_ignore_dups(true))
    {
        // check_cursor_position: output that did not end its line
        // (`io.write('x')`) keeps it; the prompt starts on the next one.
        Ok(b) => b
            .auto_add_history(false)
            .completion_type(CompletionType::List)
            .check_cursor_position(true)
            .build(),
        Err(e) => fatal(console, &format!("cannot set up the line editor: {e}")),
    };
    let mut editor: Editor<complete::LuaHelper<'_>, FileHistory> = match Editor::with_config(config)
    {
        Ok(ed) => ed,
        Err(e) => fatal(console, &format!("cannot set up the line editor: {e}")),
    };
    editor.set_helper(Some(complete::LuaHelper::new(rt.lua())));
    // No printer when stdout is not a terminal: output is then direct.
    if std::io::stdout().is_terminal() {
        if let Ok(printer) = editor.create_external_printer() {
            if let Err(e) = console.attach(printer) {
                fatal(console, &format!("cannot start the output thread: {e}"));
            }
        }
    }
    let mut history = History::open(&mut editor, console);

    let mut chunk = String::new();
    loop {
        let prompt = prompt(rt.lua(), chunk.is_empty());
        sys::flush_c_stdio(); // what `io.write` buffered, before the prompt
        console.prompt_shown();
        let read = editor.readline(&prompt);
        console.prompt_done();
        let line = match read {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                chunk.clear();
                continue;
            }
            Err(ReadlineError::Eof) if chunk.is_empty() => {
                if std::io::stdin().is_terminal() {
                    console.write(b"\n", Stream::Stdout); // past the prompt
                }
                exit(console, 0, None);
            }
            Err(ReadlineError::Eof) => {
                // lua.c's rule: end of input inside a chunk shows its error.
                if let Compiled::Error(msg) | Compiled::Incomplete(msg) = compile(rt.lua(), &chunk)
                {
                    report(console, &msg);
                }
                history.add(&mut editor, console, &chunk);
                chunk.clear();
                continue;
            }
            Err(ReadlineError::Signal(_)) => continue,
            Err(e) => fatal(console, &format!("cannot read the input: {e}")),
        };
        if chunk.is_empty() {
            if line.trim().is_empty() {
                continue;
            }
            chunk = line;
        } else {
            chunk.push('\n');
            chunk.push_str(&line);
        }
        let compiled = compile(rt.lua(), &chunk);
        if let Compiled::Incomplete(_) = compiled {
            continue;
        }
        history.add(&mut editor, console, &chunk);
        chunk.clear();
        match compiled {
            Compiled::Function(f) => run_line(rt, console, f),
            Compiled::Error(msg) | Compiled::Incomplete(msg) => report(console, &msg),
        }
    }
}

/// A chunk compiled for the REPL.
enum Compiled {
    Function(Function),
    /// A syntax error at `<eof>`: more lines may complete it.
    Incomplete(String),
    Error(String),
}

/// Compiles `chunk` as lua.c does: `return <chunk>;` first (an
/// expression), then the chunk as statements. A leading `=` means
/// `return`, as in Lua 5.1-5.3.
fn compile(lua: &Lua, chunk: &str) -> Compiled {
    if let Some(expr) = chunk.strip_prefix('=') {
        return load(lua, &format!("return {expr}"));
    }
    if let Compiled::Function(f) = load(lua, &format!("return {chunk};")) {
        return Compiled::Function(f);
    }
    load(lua, chunk)
}

fn load(lua: &Lua, src: &str) -> Compiled {
    match lua.load(src).set_name(CHUNK_NAME).into_function() {
        Ok(f) => Compiled::Function(f),
        Err(mlua::Error::SyntaxError {
            message,
            incomplete_input: true,
        }) => Compiled::Incomplete(message),
        Err(mlua::Error::SyntaxError { message, .. }) => Compiled::Error(message),
        Err(e) => Compiled::Error(e.to_string()),
    }
}

/// `_PROMPT` / `_PROMPT2` if the script set them (as lua.c), else `> ` and
/// `>> `.
fn prompt(lua: &Lua, first: bool) -> String {
    let (name, default) = if first {
        ("_PROMPT", PROMPT)
    } else {
        ("_PROMPT2", PROMPT2)
    };
    match lua.globals().raw_get::<mlua::Value>(name) {
        Ok(v @ (mlua::Value::String(_) | mlua::Value::Integer(_) | mlua::Value::Number(_))) => {
            console::display(lua, &v)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| default.to_string())
        }
        _ => default.to_string(),
    }
}

/// Runs one line and prints its values or its error; then, if it left
/// goroutines behind, a warning for those of them that leaked.
fn run_line(rt: &lugo::Runtime, console: &Console, f: Function) {
    let before = rt.vm().numgoroutine();
    show_line(rt, console, f);
    if rt.vm().numgoroutine() > before {
        warn_leaks(rt, console);
    }
}

/// One line: `lugo: goroutines 17, 18 leaked (runtime.leaks() shows
/// them)`, for the leaks not told before.
fn warn_leaks(rt: &lugo::Runtime, console: &Console) {
    thread_local! {
        static TOLD: std::cell::RefCell<std::collections::HashSet<u64>> = Default::default();
    }
    let new: Vec<String> = TOLD.with_borrow_mut(|told| {
        rt.vm()
            .leaks()
            .into_iter()
            .filter(|l| told.insert(l.gid))
            .map(|l| l.gid.to_string())
            .collect()
    });
    if !new.is_empty() {
        let word = if new.len() == 1 {
            "goroutine"
        } else {
            "goroutines"
        };
        report(
            console,
            &format!(
                "lugo: {word} {} leaked (runtime.leaks() shows where)",
                new.join(", ")
            ),
        );
    }
}

/// Runs one line and prints its values or its error.
fn show_line(rt: &lugo::Runtime, console: &Console, f: Function) {
    let values = match run_task(rt, f, MultiValue::new()) {
        Waited::Done(Ok(values)) => values,
        Waited::Done(Err(e)) => return report_error(console, e),
        Waited::LeftBehind(id) => return report_left_behind(console, id),
    };
    if values.is_empty() {
        return;
    }
    match pretty::show_all(rt.lua(), &values) {
        Ok(line) => console.write(&line, Stream::Stdout),
        Err(e) => report(
            console,
            &format!("error calling 'print' ({})", lua_message(&e)),
        ),
    }
}

/// Runs a startup chunk (`-e` or the script of `-i`); false if it failed.
fn run_chunk(rt: &lugo::Runtime, console: &Console, f: Function, args: MultiValue) -> bool {
    match run_task(rt, f, args) {
        Waited::Done(Ok(_)) => true,
        Waited::Done(Err(e)) => {
            report_error(console, e);
            false
        }
        Waited::LeftBehind(id) => {
            report_left_behind(console, id);
            false
        }
    }
}

fn report_left_behind(console: &Console, id: u64) {
    report(
        console,
        &format!("interrupted (goroutine {id} left blocked)"),
    );
}

/// How waiting for a line ended.
enum Waited {
    Done(lugo::Result<MultiValue>),
    /// Interrupted but still blocked after the grace period: goroutine id.
    LeftBehind(u64),
}

/// Runs `f(args)` as a goroutine of the main actor and waits for it in
/// slices, turning Ctrl-C into `Task::interrupt`.
fn run_task(rt: &lugo::Runtime, f: Function, args: MultiValue) -> Waited {
    // Cleared before the goroutine starts: a Ctrl-C from before is not for
    // it, one from any time after is.
    sys::take_interrupt();
    let task = match rt.go(f, args) {
        Ok(task) => task,
        Err(e) => return Waited::Done(Err(e)),
    };
    loop {
        if let Some(r) = task.wait_timeout(WAIT_SLICE) {
            return Waited::Done(r);
        }
        if sys::take_interrupt() {
            break;
        }
    }
    task.interrupt();
    let deadline = Instant::now() + INTERRUPT_GRACE;
    loop {
        if let Some(r) = task.wait_timeout(WAIT_SLICE) {
            return Waited::Done(r);
        }
        // A second Ctrl-C gives up at once.
        if Instant::now() >= deadline || sys::take_interrupt() {
            return Waited::LeftBehind(task.id());
        }
    }
}

/// Prints a line's error; exits if the runtime has ended.
fn report_error(console: &Console, e: lugo::Error) {
    match e {
        lugo::Error::Raised { message, traceback } => {
            if traceback.is_empty() {
                report(console, &message);
            } else {
                report(console, &format!("{message}\n{traceback}"));
            }
        }
        lugo::Error::Deadlock(dump) => report(console, &dump),
        lugo::Error::Stopped(outcome) => exit(console, outcome.code(), outcome.report()),
        lugo::Error::Lua(e) => report(console, &lua_message(&e)),
        other => report(console, &other.to_string()),
    }
}

/// An mlua error's message without mlua's prefixes and traceback.
fn lua_message(e: &mlua::Error) -> String {
    let full = match e {
        mlua::Error::SyntaxError { message, .. } | mlua::Error::RuntimeError(message) => {
            message.clone()
        }
        mlua::Error::CallbackError { cause, .. } => return lua_message(cause),
        other => other.to_string(),
    };
    match full.split_once("\nstack traceback:") {
        Some((message, _)) => message.to_string(),
        None => full,
    }
}

/// Writes `msg` to stderr, ended by a newline.
fn report(console: &Console, msg: &str) {
    console.write(with_newline(msg).as_bytes(), Stream::Stderr);
}

fn with_newline(s: &str) -> Cow<'_, str> {
    if s.ends_with('\n') {
        Cow::Borrowed(s)
    } else {
        Cow::Owned(format!("{s}\n"))
    }
}

/// Ends the process when the runtime ends (`os.exit` in any goroutine, a
/// fatal error), also while the prompt waits for a line.
fn watch_outcome(rt: &lugo::Runtime, console: &Arc<Console>) {
    let vm = rt.vm().clone();
    let watcher = console.clone();
    let spawned = std::thread::Builder::new()
        .name("lugo-repl-exit".into())
        .spawn(move || {
            let outcome = vm.wait();
            exit(&watcher, outcome.code(), outcome.report());
        });
    if let Err(e) = spawned {
        fatal(console, &format!("cannot start the exit watcher: {e}"));
    }
}

/// Set by the first thread that ends the process.
static EXITING: AtomicBool = AtomicBool::new(false);

/// The console, for [`on_process_exit`].
static CONSOLE: OnceLock<Arc<Console>> = OnceLock::new();

/// `exit(3)` called by code other than [`exit`] (the SIGQUIT dump, a C
/// library): the same clean-up, so the terminal is not left in raw mode.
extern "C" fn on_process_exit() {
    if EXITING.swap(true, Ordering::AcqRel) {
        return; // [`exit`] did it
    }
    let unprinted = CONSOLE.get().map(|c| c.close()).unwrap_or_default();
    sys::restore_terminal();
    if let Some(console) = CONSOLE.get() {
        for msg in unprinted {
            console.write(msg.as_bytes(), Stream::Stdout);
        }
    }
}

/// Exits with `code` after printing `report`: queued output is printed
/// and the terminal leaves raw mode. Only the first caller goes through; a
/// later one (the watcher and the REPL thread seeing the same outcome)
/// waits for the process to end.
fn exit(console: &Console, code: i32, report: Option<&str>) -> ! {
    if EXITING.swap(true, Ordering::AcqRel) {
        loop {
            std::thread::park();
        }
    }
    let unprinted = console.close();
    sys::restore_terminal();
    for msg in unprinted {
        console.write(msg.as_bytes(), Stream::Stdout);
    }
    if let Some(report) = report {
        console.write(with_newline(report).as_bytes(), Stream::Stderr);
    }
    sys::flush_c_stdio();
    std::process::exit(code);
}

/// Reports a failure of the REPL itself and exits with status 1.
fn fatal(console: &Console, msg: &str) -> ! {
    exit(console, 1, Some(&format!("lugo: {msg}")))
}

/// The history file: `$LUGO_HISTORY` (empty: none) or `~/.lugo_history`.
/// Each entry is appended as it is made, so a session that ends by
/// `os.exit` keeps its lines.
struct History {
    path: Option<PathBuf>,
    warned: bool,
}

impl History {
    fn open(
        editor: &mut Editor<complete::LuaHelper<'_>, FileHistory>,
        console: &Console,
    ) -> History {
        let path = match std::env::var_os("LUGO_HISTORY") {
            Some(p) if p.is_empty() => None,
            Some(p) => Some(PathBuf::from(p)),
            None => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".lugo_history")),
        };
        if let Some(p) = &path {
            match editor.load_history(p) {
                Ok(()) => {}
                Err(ReadlineError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => report(
                    console,
                    &format!("lugo: cannot read the history {}: {e}", p.display()),
                ),
            }
        }
        History {
            path,
            warned: false,
        }
    }

    fn add(
        &mut self,
        editor: &mut Editor<complete::LuaHelper<'_>, FileHistory>,
        console: &Console,
        entry: &str,
    ) {
        if editor.add_history_entry(entry).is_err() {
            return;
        }
        let Some(p) = &self.path else { return };
        if let Err(e) = editor.append_history(p) {
            if !std::mem::replace(&mut self.warned, true) {
                let msg = format!("lugo: cannot write the history {}: {e}", p.display());
                report(console, &msg);
            }
        }
    }
}
