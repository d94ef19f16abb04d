//! Helpers shared by the integration tests (`mod common;` in each test
//! file): run the `lugo` binary with a time limit and capture its output.
//!
//! Each test crate uses only some of these helpers.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

/// A run that takes longer than this is killed and counts as a failure.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a stream a failure report shows (its tail).
const REPORT_LIMIT: usize = 4000;

/// The `lugo` binary built by cargo for this test run.
pub fn lugo() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lugo"));
    cmd.current_dir(root()).env_remove("LUGO_MAXPROCS");
    cmd
}

/// Starts `cmd` with piped stdout and stderr, and reads its first stdout
/// line (the program says it is ready). Returns the child, that line
/// (trimmed) and the rest of stdout.
#[allow(dead_code)] // not every test binary uses it
pub fn spawn_ready(
    cmd: &mut Command,
) -> (Child, String, std::io::BufReader<std::process::ChildStdout>) {
    use std::io::BufRead;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut out = std::io::BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read the first line");
    (child, line.trim().to_string(), out)
}

/// All of a child's piped stderr (returns once the child closes it).
#[allow(dead_code)] // not every test binary uses it
pub fn read_stderr(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .expect("piped stderr")
        .read_to_string(&mut err)
        .expect("read stderr");
    err
}

/// The workspace root: scripts are given to lugo relative to it.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The files of `dir` (relative to the root) whose name ends in `.ext`,
/// sorted, as paths relative to the root. Subdirectories are not searched.
pub fn files_with_ext(dir: &str, ext: &str) -> Vec<PathBuf> {
    let full = root().join(dir);
    let entries =
        std::fs::read_dir(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .map(|p| Path::new(dir).join(p.file_name().expect("file name")))
        .collect();
    files.sort();
    files
}

/// Keep only the items whose name contains `LUGO_TEST_FILTER`, when that
/// variable is set (handy to run one script: `LUGO_TEST_FILTER=select`).
pub fn filtered<T>(items: Vec<T>, name: impl Fn(&T) -> String) -> Vec<T> {
    match std::env::var("LUGO_TEST_FILTER") {
        Ok(f) if !f.is_empty() => items.into_iter().filter(|i| name(i).contains(&f)).collect(),
        _ => items,
    }
}

/// What one run of the binary did.
pub struct Outcome {
    /// `None` when the run was killed for exceeding its time limit.
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn timed_out(&self) -> bool {
        self.status.is_none()
    }

    /// The last line of stdout, if any.
    pub fn last_stdout_line(&self) -> Option<&str> {
        self.stdout.lines().last()
    }

    /// Status, time, stdout and stderr, for a failure report.
    pub fn describe(&self) -> String {
        let status = match self.status {
            Some(s) => s.to_string(),
            None => format!("killed after the {}s time limit", TIMEOUT.as_secs()),
        };
        let mut out = String::new();
        let _ = writeln!(
            out,
            "status: {status} (after {:.2}s)",
            self.elapsed.as_secs_f64()
        );
        let _ = writeln!(out, "stdout:\n{}", indent(tail(&self.stdout)));
        let _ = write!(out, "stderr:\n{}", indent(tail(&self.stderr)));
        out
    }
}

fn tail(s: &str) -> String {
    if s.len() <= REPORT_LIMIT {
        return s.to_string();
    }
    let mut start = s.len() - REPORT_LIMIT;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} bytes cut ...]\n{}", &s[start..])
}

fn indent(s: String) -> String {
    if s.is_empty() {
        return "    (empty)".to_string();
    }
    s.lines()
        .map(|l| format!("    {l}\n"))
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// Run `cmd` to completion, feeding it `stdin` (or an empty stdin), and
/// kill it after `timeout`.
pub fn run(cmd: &mut Command, stdin: Option<&[u8]>, timeout: Duration) -> Outcome {
    let start = Instant::now();
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));

    let writer = child.stdin.take().map(|mut pipe| {
        let data = stdin.unwrap_or_default().to_vec();
        // The child may exit without reading everything: ignore EPIPE.
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let stdout = reader(child.stdout.take().expect("piped stdout"));
    let stderr = reader(child.stderr.take().expect("piped stderr"));

    let status = wait_with_timeout(&mut child, timeout);
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    if let Some(w) = writer {
        let _ = w.join();
    }
    Outcome {
        status,
        stdout,
        stderr,
        elapsed: start.elapsed(),
    }
}

fn reader(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            Err(e) => panic!("waiting for lugo: {e}"),
        }
    }
}

/// Run `check` on every job, a few at a time, and return the failure
/// reports (in job order). `check` returns `Err(report)` for a failure.
pub fn run_all<J: Sync>(
    jobs: &[J],
    check: impl Fn(&J) -> Result<(), String> + Sync,
) -> Vec<String> {
    let workers = thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(2, 8);
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                if let Err(report) = check(job) {
                    failures.lock().expect("failure list").push((i, report));
                }
            });
        }
    });
    let mut failures = failures.into_inner().expect("failure list");
    failures.sort_by_key(|(i, _)| *i);
    failures.into_iter().map(|(_, report)| report).collect()
}

/// Panic with every failure report, or return if there is none.
pub fn assert_no_failures(what: &str, total: usize, failures: &[String]) {
    if !failures.is_empty() {
        panic!(
            "{} of {total} {what} failed:\n\n{}",
            failures.len(),
            failures.join("\n\n")
        );
    }
}

/// What a child used and said, measured by `wait4` ([`run_measured`]).
pub struct Measured {
    /// Exit status, or `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// CPU time, user and system.
    pub cpu: Duration,
    /// Peak resident memory, KB.
    pub max_rss_kb: i64,
    pub wall: Duration,
}

/// Runs `cmd` with `stdin` as its input, killed once `limit` has passed,
/// and measures what it used (`wait4` reaps it: clippy cannot see that).
#[allow(clippy::zombie_processes)]
pub fn run_measured(cmd: &mut Command, stdin: &str, limit: Duration) -> Measured {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let pid = child.id() as libc::pid_t;
    let mut input = child.stdin.take().expect("piped stdin");
    let text = stdin.to_string();
    let writer = thread::spawn(move || {
        let _ = input.write_all(text.as_bytes());
    });
    let reader = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut b = Vec::new();
            let _ = r.read_to_end(&mut b);
            String::from_utf8_lossy(&b).into_owned()
        })
    };
    let out = reader(Box::new(child.stdout.take().expect("piped stdout")));
    let err = reader(Box::new(child.stderr.take().expect("piped stderr")));
    let (status, ru) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our child; WNOHANG returns at once.
        if unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) } == pid {
            break (status, ru);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
        }
        thread::sleep(Duration::from_millis(2));
    };
    let _ = writer.join();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Measured {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        stdout: out.join().expect("stdout reader"),
        stderr: err.join().expect("stderr reader"),
        cpu: tv(ru.ru_utime) + tv(ru.ru_stime),
        max_rss_kb: ru.ru_maxrss,
        wall: started.elapsed(),
    }
}
