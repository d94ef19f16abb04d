//! The system monitor seen from outside: SIGQUIT dumps, schedtrace, and
//! the preemption that keeps a spinning goroutine from starving others.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{lugo, read_stderr, run, spawn_ready};

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn sigquit_prints_every_goroutine_and_exits_2() {
    let (mut child, line, _out) = spawn_ready(lugo().args([
        "-e",
        r#"
local c = chan()
go(function() c:recv() end)               -- goroutine 2
time.sleep(0.01)                          -- let it park
go(function() while true do end end)      -- goroutine 3 spins: preempted
go(function()                             -- goroutine 4: "ready" once main sleeps
  local function state(id)
    for _, g in ipairs(runtime.goroutines()) do if g.id == id then return g.state end end
  end
  while state(1) ~= "sleep" or state(2) ~= "chan receive" do runtime.gosched() end
  print("ready") io.stdout:flush()
end)
time.sleep(30)
"#,
    ]));
    assert_eq!(line, "ready");
    // SAFETY: kill(2) on our own child's pid.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
    assert_eq!(r, 0);
    let err = read_stderr(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(2), "stderr:\n{err}");
    assert!(err.starts_with("SIGQUIT: quit\n"), "stderr:\n{err}");
    assert!(err.contains("goroutine 1 [sleep]:"), "stderr:\n{err}");
    assert!(
        err.contains("goroutine 2 [chan receive]:"),
        "stderr:\n{err}"
    );
    assert!(
        err.contains("goroutine 3 ["),
        "the spinner is listed:\n{err}"
    );
}

#[test]
fn sigusr1_prints_every_goroutine_and_the_program_goes_on() {
    use std::io::{BufRead, Read};
    let flag = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sigusr1.flag");
    let _ = std::fs::remove_file(&flag);
    let (mut child, line, mut out) = spawn_ready(lugo().args([
        "-e",
        &format!(
            r#"
runtime.setlabel("role", "main")
local c = chan()
go(function() c:recv() end)               -- goroutine 2
time.sleep(0.01)
print("ready") io.stdout:flush()
while not io.open({flag:?}) do time.sleep(0.005) end
print("went on")
"#
        ),
    ]));
    assert_eq!(line, "ready");
    // SAFETY: kill(2) on our own child's pid.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGUSR1) };
    assert_eq!(r, 0);
    // The dump, up to its last line (goroutine 2's creator), while the
    // program polls; then it is let go on.
    let mut err = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
    let mut dump = String::new();
    while !dump.contains("created by main chunk in goroutine 1") {
        let mut l = String::new();
        if err.read_line(&mut l).unwrap() == 0 {
            break;
        }
        dump.push_str(&l);
    }
    std::fs::write(&flag, "").unwrap();
    let status = child.wait().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert_eq!(status.code(), Some(0), "dump:\n{dump}");
    assert_eq!(rest.trim(), "went on", "the program went on");
    assert!(dump.starts_with("SIGUSR1: goroutine dump\n"), "{dump}");
    assert!(
        dump.contains("goroutine 1 [sleep] {role=\"main\"}:"),
        "{dump}"
    );
    assert!(
        dump.contains("goroutine 2 [chan receive] {role=\"main\"}:"),
        "{dump}"
    );
}

#[test]
fn sigquit_dumps_at_once_while_a_goroutine_is_in_a_blocking_read() {
    // stdin is a pipe nobody writes to: io.read blocks its M (and holds
    // the main actor's state) until the pipe is closed.
    let (mut child, line, _out) = spawn_ready(
        lugo()
            .stdin(Stdio::piped())
            .args(["-e", "print('ready') io.stdout:flush() io.read()"]),
    );
    assert_eq!(line, "ready");
    std::thread::sleep(Duration::from_millis(50));
    let asked = std::time::Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    let sent = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGQUIT) };
    assert_eq!(sent, 0);
    let err = read_stderr(&mut child);
    let status = child.wait().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "the dump did not wait for the read"
    );
    assert_eq!(status.code(), Some(2), "stderr:\n{err}");
    assert!(err.contains("goroutine 1 [syscall]:"), "stderr:\n{err}");
}

#[test]
fn scheddetail_adds_a_line_per_p_and_per_goroutine() {
    let out = run(
        lugo()
            .env("LUGO_DEBUG", "schedtrace=20,scheddetail=1")
            .args([
                "--procs",
                "2",
                "-e",
                "go(function() chan():recv() end) time.sleep(0.15)",
            ]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let err = &out.stderr;
    assert!(err.contains("\n  P0: status="), "{err}");
    assert!(err.contains("\n  P1: status="), "{err}");
    assert!(err.contains("\n  G1: status=sleep actor=1"), "{err}");
    assert!(err.contains("\n  G2: status=chan receive actor=1"), "{err}");
}

#[test]
fn schedtrace_prints_go_shaped_lines() {
    let out = run(
        lugo()
            .env("LUGO_DEBUG", "schedtrace=20")
            .args(["--procs", "2", "-e", "time.sleep(0.15)"]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("SCHED "))
        .collect();
    assert!(lines.len() >= 3, "{}", out.describe());
    for l in &lines {
        for field in [
            "ms: gomaxprocs=2 ",
            " idleprocs=",
            " threads=",
            " spinningthreads=",
            " idlethreads=",
            " runqueue=",
            " goroutines=",
            " actors=1",
        ] {
            assert!(l.contains(field), "{l:?} lacks {field:?}");
        }
    }
}

/// Waits until runtime.goroutines() marks `n` goroutines leaked, then
/// until at least two more checks ran (each runs pieces of work on the
/// actor: `leak_steps` grows), then prints how many goroutines are left.
const AFTER_CHECKS: &str = r#"
local function leaked()
  local n = 0
  for _, g in ipairs(runtime.goroutines()) do if g.leaked then n = n + 1 end end
  return n
end
local t0 = time.now()
while leaked() < WANT and time.now() - t0 < 20 do time.sleep(0.01) end
local s = runtime.stats().leak_steps
while runtime.stats().leak_steps < s + 8 and time.now() - t0 < 20 do time.sleep(0.01) end
print(leaked(), runtime.numgoroutine())
"#;

#[test]
fn leakcheck_reports_each_leak_once() {
    let script = format!(
        "{}\nlocal function leak() local c = chan() go(function() c:send(1) end) end\nleak() leak() leak()\n{}",
        "WANT = 3",
        AFTER_CHECKS
    );
    let out = run(
        lugo()
            .env("LUGO_DEBUG", "leakcheck=1,leakcheckperiod=20")
            .args(["-e", &script]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert_eq!(out.stdout.trim(), "3\t4", "{}", out.describe());
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("lugo: goroutine "))
        .collect();
    assert_eq!(lines.len(), 3, "each leak once:\n{}", out.describe());
    for (l, id) in lines.iter().zip(2..) {
        assert!(
            l.starts_with(&format!(
                "lugo: goroutine {id} leaked: blocked in chan send at "
            )),
            "{l}"
        );
        assert!(l.contains(", created by function <"), "{l}");
        assert!(l.contains(" in goroutine 1 at "), "{l}");
    }
}

#[test]
fn leakcheck_2_reclaims_what_it_finds() {
    // Each leaked goroutine's <close> handler counts its end (`ended` is a
    // global: the handler runs in the leaked goroutine as it is reclaimed).
    let script = r#"
ended, why = 0, nil
local function leak()
  local c = chan()
  go(function()
    local _ <close> = setmetatable({}, {__close = function(_, e) ended = ended + 1 why = e end})
    c:send(1)
  end)
end
for _ = 1, 100 do leak() end
local t0 = time.now()
while ended < 100 and time.now() - t0 < 20 do time.sleep(0.01) end
print(ended, tostring(why), runtime.numgoroutine())
"#;
    let out = run(
        lugo()
            .env("LUGO_DEBUG", "leakcheck=2,leakcheckperiod=20")
            .args(["-e", script]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert_eq!(
        out.stdout.trim(),
        "100\tgoroutine leaked\t1",
        "{}",
        out.describe()
    );
}

#[test]
fn no_schedtrace_without_lugo_debug() {
    let out = run(lugo().args(["-e", "time.sleep(0.05)"]), None, TIMEOUT);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert!(!out.stderr.contains("SCHED"), "{}", out.describe());
}

#[test]
fn sysmon_ticks_are_counted() {
    let out = run(
        lugo().args([
            "-e",
            "local go_on = true go(function() while go_on do end end) time.sleep(0.05) go_on = false print(runtime.stats().sysmon_ticks > 0)",
        ]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.stdout.trim(), "true", "{}", out.describe());
}

#[test]
fn a_long_blocking_call_has_its_p_handed_off() {
    for procs in ["1", "2"] {
        let out = run(
            lugo().args([
                "--procs",
                procs,
                "-e",
                r#"os.execute("sleep 0.1") print(runtime.stats().handoffs > 0)"#,
            ]),
            None,
            TIMEOUT,
        );
        assert_eq!(out.code(), Some(0), "{}", out.describe());
        assert_eq!(
            out.stdout.trim(),
            "true",
            "--procs {procs}: {}",
            out.describe()
        );
    }
}

#[test]
fn a_goroutine_in_a_blocking_call_is_not_deadlocked() {
    // stdin stays open and silent for a while: io.read blocks, and nothing
    // else can run; that is not a deadlock.
    let mut child = lugo()
        .args(["-e", "print(io.read('l'))"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start lugo");
    std::thread::sleep(Duration::from_millis(200));
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"late line\n").unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "late line");
}
