//! The `lugo` command line, as /work/shared/API.md describes it: scripts and
//! their arguments, `-e`, reading the script from stdin, `--procs` and
//! `LUGO_MAXPROCS`, `--version`, and exiting when the main chunk returns.

mod common;

use common::{lugo, run, Outcome, TIMEOUT};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Write `source` to a fresh script file for the test `name`.
fn script(name: &str, source: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).expect("create the cli test directory");
    let path = dir.join(format!("{name}.lua"));
    // Tests run in parallel and some share a script: write aside and rename
    // (atomic), so a reader never sees a half-written file.
    let tmp = dir.join(format!("{name}.{:?}.tmp", std::thread::current().id()));
    std::fs::write(&tmp, source).expect("write the test script");
    std::fs::rename(&tmp, &path).expect("move the test script in place");
    path
}

fn run_cmd(cmd: &mut Command) -> Outcome {
    run(cmd, None, TIMEOUT)
}

/// Assert a zero exit status and return the stdout lines.
fn success(what: &str, out: &Outcome) -> Vec<String> {
    assert_eq!(out.code(), Some(0), "{what}:\n{}", out.describe());
    out.stdout.lines().map(str::to_string).collect()
}

#[test]
fn script_arguments_in_arg() {
    let path = script(
        "args",
        r#"
print(arg[0])
print(arg[1])
print(arg[2])
print(arg[3])
print(#arg)
"#,
    );
    let out = run_cmd(lugo().arg(&path).args(["a", "b", "c d"]));
    let lines = success("lugo script.lua a b 'c d'", &out);
    let expected = [
        path.display().to_string(),
        "a".into(),
        "b".into(),
        "c d".into(),
        "3".into(),
    ];
    assert_eq!(lines, expected, "{}", out.describe());
}

#[test]
fn script_without_arguments() {
    let path = script("noargs", "print(#arg, arg[1])\n");
    let out = run_cmd(lugo().arg(&path));
    assert_eq!(
        success("lugo script.lua", &out),
        ["0\tnil"],
        "{}",
        out.describe()
    );
}

#[test]
fn script_arguments_as_varargs() {
    // lua passes the script arguments as `...` too
    let path = script("varargs", "print(select('#', ...), ...)\n");
    let out = run_cmd(lugo().arg(&path).args(["x", "y"]));
    assert_eq!(
        success("lugo script.lua x y", &out),
        ["2\tx\ty"],
        "{}",
        out.describe()
    );
}

#[test]
fn exec_chunk() {
    let out = run_cmd(lugo().args(["-e", "print('from -e', runtime.id())"]));
    assert_eq!(
        success("lugo -e", &out),
        ["from -e\t1"],
        "{}",
        out.describe()
    );
}

#[test]
fn exec_chunk_with_goroutines() {
    let chunk = "local c = chan() go(function() c:send(21) end) print(c:recv() * 2)";
    let out = run_cmd(lugo().args(["-e", chunk]));
    assert_eq!(success("lugo -e", &out), ["42"], "{}", out.describe());
}

#[test]
fn exec_chunk_then_script() {
    let path = script("after_e", "print('script', x + 1, arg[1])\n");
    let out = run_cmd(
        lugo()
            .args(["-e", "x = 41 print('chunk')"])
            .arg(&path)
            .arg("a1"),
    );
    assert_eq!(
        success("lugo -e chunk script.lua a1", &out),
        ["chunk", "script\t42\ta1"],
        "{}",
        out.describe()
    );
}

#[test]
fn script_from_stdin_with_dash() {
    let out = run(lugo().arg("-"), Some(b"print(1)\n"), TIMEOUT);
    assert_eq!(
        success("echo 'print(1)' | lugo -", &out),
        ["1"],
        "{}",
        out.describe()
    );
}

#[test]
fn script_from_stdin_when_not_a_terminal() {
    let src = b"local c = chan(1) go(function() c:send(2) end) print((c:recv()))\n";
    let out = run(&mut lugo(), Some(src), TIMEOUT);
    assert_eq!(success("lugo < script", &out), ["2"], "{}", out.describe());
}

fn gomaxprocs_script() -> PathBuf {
    script("gomaxprocs", "print(runtime.gomaxprocs())\n")
}

#[test]
fn procs_flag() {
    let out = run_cmd(lugo().args(["--procs", "2"]).arg(gomaxprocs_script()));
    assert_eq!(success("lugo --procs 2", &out), ["2"], "{}", out.describe());
    let out = run_cmd(lugo().args(["--procs", "1"]).arg(gomaxprocs_script()));
    assert_eq!(success("lugo --procs 1", &out), ["1"], "{}", out.describe());
}

#[test]
fn procs_flag_with_exec_chunk() {
    let out = run_cmd(lugo().args(["--procs", "2", "-e", "print(runtime.gomaxprocs())"]));
    assert_eq!(
        success("lugo --procs 2 -e", &out),
        ["2"],
        "{}",
        out.describe()
    );
}

#[test]
fn procs_from_environment() {
    let out = run_cmd(lugo().env("LUGO_MAXPROCS", "3").arg(gomaxprocs_script()));
    assert_eq!(
        success("LUGO_MAXPROCS=3 lugo", &out),
        ["3"],
        "{}",
        out.describe()
    );
}

#[test]
fn default_procs_is_positive() {
    let out = run_cmd(lugo().arg(gomaxprocs_script()));
    let lines = success("lugo", &out);
    let n: i64 = lines.first().and_then(|l| l.parse().ok()).unwrap_or(0);
    assert!(n >= 1, "gomaxprocs() by default: {}", out.describe());
}

#[test]
fn help_lists_the_environment_and_the_signals() {
    let out = run_cmd(lugo().arg("--help"));
    let text = success("--help", &out).join("\n");
    for word in [
        "LUGO_MAXPROCS",
        "LUGO_DEBUG",
        "schedtrace",
        "scheddetail",
        "LUGO_HISTORY",
        "SIGQUIT",
        "SIGUSR1",
    ] {
        assert!(
            text.contains(word),
            "--help says nothing of {word}:\n{text}"
        );
    }
}

const HOT: &str = r#"
local function hot(n) local x = 0 for i = 1, n do x = x + i % 7 end return x end
local function cold(n) local x = 0 for i = 1, n do x = x + i end return x end
local t = time.now()
go(function() cold(1000) end)
while time.now() - t < 0.5 do hot(20000) end
"#;

#[test]
fn a_cpu_profile_names_the_hot_function_widest() {
    let script = script("cpuprofile", HOT);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let folded = dir.join("cpuprofile.txt");
    success(
        "--cpuprofile",
        &run_cmd(lugo().arg("--cpuprofile").arg(&folded).arg(&script)),
    );
    let text = std::fs::read_to_string(&folded).expect("the profile was written");
    // `frames count` per line, most sampled first.
    let mut lines: Vec<(String, u64)> = text
        .lines()
        .map(|l| {
            let (stack, n) = l.rsplit_once(' ').expect("a count");
            (stack.to_string(), n.parse().expect("a number"))
        })
        .collect();
    lines.sort_by_key(|l| std::cmp::Reverse(l.1));
    let total: u64 = lines.iter().map(|l| l.1).sum();
    assert!(total >= 5, "about 100 samples a second for 0.5 s:\n{text}");
    let (widest, n) = &lines[0];
    assert!(widest.starts_with("main chunk ("), "{text}");
    assert!(
        widest.ends_with(";hot (") || widest.contains(";hot ("),
        "{text}"
    );
    assert!(*n * 2 > total, "hot has most samples:\n{text}");
    // A flame graph when the name ends in .svg.
    let svg = dir.join("cpuprofile.svg");
    success(
        "--cpuprofile svg",
        &run_cmd(lugo().arg("--cpuprofile").arg(&svg).arg(&script)),
    );
    let svg = std::fs::read_to_string(&svg).expect("the flame graph was written");
    assert!(
        svg.contains("<svg") && svg.contains("hot ("),
        "a flame graph naming hot"
    );
}

#[test]
fn version() {
    for flag in ["--version", "-v"] {
        let out = run_cmd(lugo().arg(flag));
        assert_eq!(out.code(), Some(0), "lugo {flag}:\n{}", out.describe());
        assert!(
            out.stdout.lines().any(|l| l.contains("lugo")),
            "lugo {flag} prints a line containing `lugo` on stdout:\n{}",
            out.describe()
        );
    }
}

/// Main returning ends the program with status 0, whatever the other
/// goroutines are doing.
fn exits_promptly(name: &str, source: &str) {
    let path = script(name, source);
    let out = run_cmd(lugo().arg(&path));
    assert_eq!(success(name, &out), ["main done"], "{}", out.describe());
    assert!(
        out.elapsed < Duration::from_secs(5),
        "{name}: exit took {:.2}s",
        out.elapsed.as_secs_f64()
    );
}

#[test]
fn exit_when_main_returns_with_blocked_goroutines() {
    exits_promptly(
        "blocked_goroutines",
        r#"
local mu = sync.mutex()
mu:lock()
local wg = sync.waitgroup()
wg:add(1)
local started = chan(4)
go(function() started:send(1) chan():recv() end)
go(function() started:send(1) chan():send(1) end)
go(function() started:send(1) mu:lock() end)
go(function() started:send(1) wg:wait() end)
go(function() time.sleep(100) end)
go(function() chan.select() end)
for _ = 1, 4 do started:recv() end
time.sleep(0.01)
print("main done")
"#,
    );
}

#[test]
fn exit_when_main_returns_with_runnable_goroutines() {
    // never scheduled before main returns: main does not park after go()
    exits_promptly(
        "runnable_goroutines",
        r#"
for _ = 1, 10 do go(function() while true do end end) end
print("main done")
"#,
    );
}

#[test]
fn exit_when_main_returns_with_running_goroutines() {
    // main sleeps, so the spinners run; main wakes only through preemption
    exits_promptly(
        "running_goroutines",
        r#"
for _ = 1, 3 do go(function() while true do end end) end
go(function() while true do runtime.gosched() end end)
go(function() while true do time.sleep(0.001) end end)
time.sleep(0.05)
print("main done")
"#,
    );
}

#[test]
fn output_is_flushed_at_exit() {
    let path = script(
        "flush",
        r#"
go(function() chan():recv() end)
for i = 1, 5000 do print(i) end
for i = 5001, 10000 do io.write(i, "\n") end
io.write("tail")
"#,
    );
    let out = run_cmd(lugo().arg(&path));
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 10001, "every line arrives: {}", out.describe());
    assert_eq!(lines[0], "1");
    assert_eq!(lines[9999], "10000");
    assert_eq!(lines[10000], "tail");
}

#[test]
fn output_is_flushed_at_os_exit_in_goroutine() {
    let path = script(
        "flush_exit",
        r#"
go(function()
  for i = 1, 1000 do io.write(i, "\n") end
  io.write("last")
  os.exit(0)
end)
chan():recv()
"#,
    );
    let out = run_cmd(lugo().arg(&path));
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 1001, "every line arrives: {}", out.describe());
    assert_eq!(lines[1000], "last");
}

#[test]
fn cannot_load_exits_1() {
    let path = script("syntax", "local = 1\n");
    let out = run_cmd(lugo().arg(&path));
    assert_eq!(out.code(), Some(1), "syntax error:\n{}", out.describe());
    let out = run_cmd(lugo().arg(path.with_file_name("no_such_script.lua")));
    assert_eq!(out.code(), Some(1), "missing file:\n{}", out.describe());
}

#[test]
fn a_closed_pipe_ends_the_program_as_in_lua() {
    // `lugo -e '...' | head -1`: the reader goes away after one line.
    let mut child = lugo()
        .args(["-e", "while true do print(1) end"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 2];
    std::io::Read::read_exact(&mut out, &mut first).unwrap();
    assert_eq!(&first, b"1\n");
    drop(out);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("lugo went on writing to a closed pipe");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(libc::SIGPIPE), "{status:?}");
}

#[test]
fn an_unknown_option_is_named() {
    let out = run_cmd(lugo().arg("--unknown"));
    assert_eq!(out.code(), Some(1), "{}", out.describe());
    assert!(
        out.stderr.contains("unrecognized option '--unknown'"),
        "{}",
        out.describe()
    );
}

#[test]
fn lines_printed_by_parallel_actors_never_interleave() {
    let path = script(
        "print_lines",
        r#"
local hs = {}
for a = 1, 4 do
  hs[a] = actor.spawn(function(a)
    for i = 1, 2000 do print("actor", a, "line", i, ("x"):rep(40)) end
  end, a)
end
for _, h in ipairs(hs) do assert(h:wait()) end
"#,
    );
    let out = run_cmd(lugo().args(["--procs", "4"]).arg(&path));
    let lines = success("4 actors printing", &out);
    assert_eq!(lines.len(), 8000);
    let torn = lines
        .iter()
        .filter(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            !(f.len() == 5 && f[0] == "actor" && f[2] == "line" && f[4].len() == 40)
        })
        .count();
    assert_eq!(torn, 0, "torn lines");
}

#[test]
fn a_script_may_start_with_a_byte_order_mark() {
    let path = script("bom", "\u{feff}print('bom ok')\n");
    let out = run_cmd(lugo().arg(&path));
    assert_eq!(success("a script with a BOM", &out), ["bom ok"]);
}

#[test]
fn finalizers_run_at_exit_as_lua_c_closes_its_state() {
    let gc = "setmetatable({}, { __gc = function() print('finalized') end })";
    let cases = [
        (gc.to_string(), 0, true),
        (format!("{gc} error('boom')"), 2, true),
        (format!("{gc} os.exit(3, true)"), 3, true),
        // os.exit without `close` leaves at once, as in Lua
        (format!("{gc} os.exit(3)"), 3, false),
    ];
    for (src, code, finalized) in cases {
        let out = run_cmd(lugo().args(["-e", &src]));
        assert_eq!(out.code(), Some(code), "{src}: {}", out.describe());
        assert_eq!(
            out.stdout.contains("finalized"),
            finalized,
            "{src}: {}",
            out.describe()
        );
    }
}
