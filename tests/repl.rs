//! The REPL as a person uses it: the real `lugo` binary in a
//! pseudo-terminal, keys typed, the output read back both as a stream
//! (escape sequences removed) and as a screen (a vt100 emulator).
//!
//! Every wait is bounded by [`WAIT`]: a broken REPL fails the test with
//! the screen and the output's tail instead of hanging it. Each test has
//! its own history file (`LUGO_HISTORY`).

mod common;

use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

/// The longest any expected output may take to appear.
const WAIT: Duration = Duration::from_secs(10);

const ROWS: u16 = 30;
const COLS: u16 = 100;

/// Keys.
const CTRL_C: &str = "\x03";
const CTRL_D: &str = "\x04";
const UP: &str = "\x1b[A";
const TAB: &str = "\t";

/// What the REPL wrote so far.
struct Output {
    /// Everything, with escape sequences and carriage returns removed.
    text: String,
    /// The terminal as a person would see it.
    screen: vt100::Parser,
    /// The pty is closed: the REPL has exited.
    closed: bool,
}

/// A `lugo` process on a pseudo-terminal.
struct Repl {
    child: Box<dyn Child + Send + Sync>,
    keys: Arc<Mutex<Box<dyn Write + Send>>>,
    output: Arc<(Mutex<Output>, Condvar)>,
    /// Where in `text` the next `expect` starts looking.
    mark: usize,
    _master: Box<dyn MasterPty + Send>,
}

/// A path for the test `name`'s file of kind `ext`, removed if it exists.
/// It holds the process id: two runs of these tests at once do not share
/// files.
fn temp_file(name: &str, ext: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("repl");
    std::fs::create_dir_all(&dir).expect("create the repl test directory");
    let path = dir.join(format!("{name}.{}.{ext}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path
}

/// A fresh history file path for the test `name` (not created).
fn history_file(name: &str) -> PathBuf {
    temp_file(name, "history")
}

/// A script for the test `name`.
fn script_file(name: &str, source: &str) -> String {
    let path = temp_file(name, "lua");
    std::fs::write(&path, source).expect("write the script");
    path.to_str().expect("a UTF-8 path").to_string()
}

impl Repl {
    /// Starts `lugo args...` with `history` as its history file and waits
    /// for the first prompt.
    fn start(args: &[&str], history: &PathBuf) -> Repl {
        let mut repl = Repl::spawn(args, history);
        repl.expect("> ");
        repl
    }

    fn spawn(args: &[&str], history: &PathBuf) -> Repl {
        let pty = native_pty_system()
            .openpty(PtySize {
                rows: ROWS,
                cols: COLS,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pty");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_lugo"));
        cmd.args(args);
        cmd.cwd(common::root());
        cmd.env("LUGO_HISTORY", history);
        cmd.env("TERM", "xterm");
        cmd.env_remove("LUGO_MAXPROCS");
        let child = pty.slave.spawn_command(cmd).expect("start lugo on the pty");
        drop(pty.slave);
        let mut reader = pty.master.try_clone_reader().expect("pty reader");
        let keys = Arc::new(Mutex::new(pty.master.take_writer().expect("pty writer")));
        let rows = NonZeroU16::new(ROWS).expect("rows");
        let cols = NonZeroU16::new(COLS).expect("cols");
        let output = Arc::new((
            Mutex::new(Output {
                text: String::new(),
                screen: vt100::Parser::new(rows, cols, 0),
                closed: false,
            }),
            Condvar::new(),
        ));
        let out = output.clone();
        let answer = keys.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut strip = Strip::default();
            loop {
                let n = reader.read(&mut buf).unwrap_or(0);
                let (lock, cv) = &*out;
                // A poisoned lock: the test failed already.
                let Ok(mut o) = lock.lock() else { return };
                if n == 0 {
                    o.closed = true;
                    cv.notify_all();
                    return;
                }
                o.screen.process(&buf[..n]);
                let text = strip.feed(&buf[..n]);
                o.text.push_str(&text);
                // Answer "where is the cursor?" (ESC [ 6 n) as a terminal
                // does: rustyline asks before each prompt.
                for _ in 0..strip.take_cursor_queries() {
                    let (row, col) = o.screen.screen().cursor_position();
                    let reply = format!("\x1b[{};{}R", row + 1, col + 1);
                    if let Ok(mut keys) = answer.lock() {
                        let _ = keys.write_all(reply.as_bytes()).and_then(|()| keys.flush());
                    }
                }
                cv.notify_all();
            }
        });
        Repl {
            child,
            keys,
            output,
            mark: 0,
            _master: pty.master,
        }
    }

    /// Types `keys`.
    fn send(&mut self, keys: &str) {
        let mut w = self.keys.lock().expect("keys lock");
        w.write_all(keys.as_bytes()).expect("type keys");
        w.flush().expect("type keys");
    }

    /// Types `line` and Enter.
    fn line(&mut self, line: &str) {
        self.send(&format!("{line}\r"));
    }

    /// Waits until `what` is in the output written since the last match;
    /// returns the output up to and including it.
    fn expect(&mut self, what: &str) -> String {
        let mark = self.mark;
        let found = self.wait_for(what, |o| {
            o.text[mark..].find(what).map(|i| {
                (
                    mark + i + what.len(),
                    o.text[mark..mark + i + what.len()].to_string(),
                )
            })
        });
        self.mark = found.0;
        found.1
    }

    /// Waits until `pred` holds for the screen's rows (cursor row last).
    fn expect_screen(&mut self, what: &str, pred: impl Fn(&[String]) -> bool) -> Vec<String> {
        self.wait_for(what, |o| {
            let (row, _) = o.screen.screen().cursor_position();
            let rows: Vec<String> = o
                .screen
                .screen()
                .rows(0, COLS)
                .take(row as usize + 1)
                .collect();
            pred(&rows).then_some(rows)
        })
    }

    fn wait_for<T>(&self, what: &str, mut found: impl FnMut(&Output) -> Option<T>) -> T {
        let deadline = Instant::now() + WAIT;
        let (lock, cv) = &*self.output;
        let mut o = lock.lock().expect("output lock");
        loop {
            if let Some(t) = found(&o) {
                return t;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || o.closed {
                let tail_at = o.text.len().saturating_sub(2000);
                let tail_at = (tail_at..o.text.len())
                    .find(|&i| o.text.is_char_boundary(i))
                    .unwrap_or(0);
                panic!(
                    "waited {WAIT:?} for {what:?}{}\n--- screen ---\n{}\n--- output since the last match ---\n{}\n--- output tail ---\n{}",
                    if o.closed { " (lugo exited)" } else { "" },
                    o.screen.screen().contents(),
                    &o.text[self.mark.min(o.text.len())..],
                    &o.text[tail_at..],
                );
            }
            o = cv.wait_timeout(o, left).expect("output lock").0;
        }
    }

    /// Waits for the process to exit; returns its status code.
    fn exit_code(&mut self) -> u32 {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for lugo") {
                assert!(status.signal().is_none(), "lugo was killed: {status:?}");
                return status.exit_code();
            }
            if Instant::now() > deadline {
                let screen = self
                    .output
                    .0
                    .lock()
                    .expect("lock")
                    .screen
                    .screen()
                    .contents();
                panic!("lugo did not exit within {WAIT:?}\n--- screen ---\n{screen}");
            }
            // Bounded polling: try_wait is the only way portable-pty offers.
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Repl {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}

/// Removes escape sequences (CSI `ESC [ ... final`, OSC, and two-byte
/// `ESC x`) and carriage returns from a byte stream fed in pieces.
#[derive(Default)]
struct Strip {
    state: StripState,
    /// Parameter bytes of the CSI sequence being read.
    csi: Vec<u8>,
    /// Cursor position queries (`ESC [ 6 n`) not answered yet.
    cursor_queries: usize,
    /// Bytes of an incomplete UTF-8 character carried to the next feed.
    partial: Vec<u8>,
}

#[derive(Default, PartialEq)]
enum StripState {
    #[default]
    Text,
    Esc,
    Csi,
    Osc,
}

impl Strip {
    fn take_cursor_queries(&mut self) -> usize {
        std::mem::take(&mut self.cursor_queries)
    }

    fn feed(&mut self, bytes: &[u8]) -> String {
        let mut kept = std::mem::take(&mut self.partial);
        for &b in bytes {
            self.state = match self.state {
                StripState::Text => match b {
                    0x1b => StripState::Esc,
                    b'\r' => StripState::Text,
                    _ => {
                        kept.push(b);
                        StripState::Text
                    }
                },
                StripState::Esc => match b {
                    b'[' => {
                        self.csi.clear();
                        StripState::Csi
                    }
                    b']' => StripState::Osc,
                    _ => StripState::Text,
                },
                StripState::Csi if (0x40..=0x7e).contains(&b) => {
                    if b == b'n' && self.csi == b"6" {
                        self.cursor_queries += 1;
                    }
                    StripState::Text
                }
                StripState::Csi => {
                    self.csi.push(b);
                    StripState::Csi
                }
                StripState::Osc if b == 0x07 => StripState::Text,
                StripState::Osc => StripState::Osc,
            };
        }
        match String::from_utf8(kept) {
            Ok(s) => s,
            Err(e) => {
                let valid = e.utf8_error().valid_up_to();
                let bytes = e.into_bytes();
                self.partial = bytes[valid..].to_vec();
                String::from_utf8_lossy(&bytes[..valid]).into_owned()
            }
        }
    }
}

#[test]
fn expressions_print_their_values() {
    let mut r = Repl::start(&[], &history_file("expressions"));
    r.line("1+1");
    r.expect("\n2\n> ");
    r.line("=2*3");
    r.expect("\n6\n> ");
    r.line("'a', 1, nil, 2.0");
    r.expect("\na\t1\tnil\t2.0\n> ");
    // A statement prints nothing; globals stay for the next line.
    r.line("x = 40");
    r.expect("x = 40\n> ");
    r.line("x + 2");
    r.expect("\n42\n> ");
}

#[test]
fn a_spinning_background_goroutine_does_not_freeze_the_prompt() {
    // One P: the spinner holds the main actor's state between preemptions;
    // the REPL needs it for every line (and for the prompt).
    let mut r = Repl::start(&["--procs", "1"], &history_file("spinner"));
    r.line("spin = go(function() while true do end end)");
    r.expect("> ");
    r.line("40 + 2");
    r.expect("\n42\n> ");
    r.line("'still' .. ' here'");
    r.expect("\nstill here\n> ");
}

#[test]
fn output_without_a_newline_keeps_its_line() {
    let mut r = Repl::start(&[], &history_file("io_write"));
    // A statement: as an expression, the file io.write returns is shown.
    r.line("local _ = io.write('no newline')");
    r.expect("')");
    r.expect("no newline");
    r.expect_screen("`no newline` kept above a new prompt", |rows| {
        rows.len() >= 2 && rows[rows.len() - 2] == "no newline" && rows[rows.len() - 1] == "> "
    });
}

#[test]
fn multi_line_chunk_continues_with_a_second_prompt() {
    let mut r = Repl::start(&[], &history_file("multi_line"));
    r.line("function double(x)");
    r.expect("\n>> ");
    r.line("  return x * 2");
    r.expect("\n>> ");
    r.line("end");
    r.expect("end\n> ");
    r.line("double(21)");
    r.expect("\n42\n> ");
}

#[test]
fn error_shows_message_and_traceback_then_the_prompt() {
    let mut r = Repl::start(&[], &history_file("error"));
    r.line("error('boom')");
    r.expect("stdin:1: boom\nstack traceback:");
    r.expect("\n> ");
    r.line("=1+1");
    r.expect("\n2\n> ");
    // A syntax error is shown and the chunk dropped.
    r.line("x = = 1");
    r.expect("stdin:1: unexpected symbol near '='");
    r.expect("\n> ");
    // A value that cannot be shown.
    r.line("setmetatable({}, {__tostring = function() return {} end})");
    r.expect("error calling 'print' ('__tostring' must return a string)\n> ");
}

#[test]
fn deadlock_shows_the_dump_then_the_prompt() {
    let mut r = Repl::start(&[], &history_file("deadlock"));
    r.line("chan():recv()");
    r.expect("fatal error: all goroutines are asleep - deadlock!");
    r.expect("[chan receive]");
    r.expect("\n> ");
    r.line("=1+1");
    r.expect("\n2\n> ");
}

#[test]
fn a_line_that_leaks_a_goroutine_is_told() {
    let mut r = Repl::start(&[], &history_file("leak"));
    // The goroutine parks (gosched) before the line ends, on a channel
    // nothing else holds once the line is over.
    r.line("do local c = chan() go(function() c:send(1) end) runtime.gosched() end");
    r.expect("lugo: goroutine 2 leaked (runtime.leaks() shows where)");
    r.expect("\n> ");
    // A goroutine whose channel a global holds is not leaked: no word.
    r.line("keep = chan() go(function() keep:send(1) end) runtime.gosched()");
    r.expect("\n> ");
    r.line("=#runtime.leaks()");
    r.expect("\n1\n> ");
}

#[test]
fn ctrl_c_stops_a_running_line() {
    let mut r = Repl::start(&[], &history_file("ctrl_c_loop"));
    r.line("print('spinning') while true do end");
    r.expect("\nspinning\n");
    r.send(CTRL_C);
    r.expect("interrupted");
    r.expect("\n> ");
    r.line("=1+1");
    r.expect("\n2\n> ");
}

#[test]
fn ctrl_c_stops_a_line_spinning_inside_a_c_call() {
    let mut r = Repl::start(&[], &history_file("ctrl_c_sort"));
    r.line("print('sorting') table.sort({3, 2, 1}, function() while true do end end)");
    r.expect("\nsorting\n");
    r.send(CTRL_C);
    r.expect("interrupted");
    r.expect("\n> ");
    r.line("=1+1");
    r.expect("\n2\n> ");
}

#[test]
fn ctrl_c_stops_a_parked_line() {
    let mut r = Repl::start(&[], &history_file("ctrl_c_parked"));
    r.line("print('sleeping') time.sleep(60)");
    r.expect("\nsleeping\n");
    r.send(CTRL_C);
    r.expect("interrupted\n");
    r.expect("\n> ");
    r.line("=1+1");
    r.expect("\n2\n> ");
}

#[test]
fn ctrl_backslash_lists_the_goroutines_and_the_repl_goes_on() {
    let mut r = Repl::start(&[], &history_file("ctrl_backslash"));
    r.line("go(function() chan():recv() end) print('waiting') time.sleep(1)");
    r.expect("\nwaiting\n");
    r.send("\x1c");
    r.expect("ID     ACTOR STATE");
    r.expect("chan receive");
    r.expect("\n> ");
    r.line("=1+1");
    r.expect("\n2\n> ");
}

#[test]
fn values_are_shown_by_what_they_are() {
    let mut r = Repl::start(&[], &history_file("pretty"));
    r.line("{1, b = {c = 2}, a = 'x'}");
    r.expect("\n{1, a = \"x\", b = {c = 2}}\n> ");
    r.line("local t = {} t.me = t return t");
    r.expect("\n{me = <cycle>}\n> ");
    r.line("local c = chan(2) c:send(1) return c");
    r.expect("\nchan(cap 2, len 1, open)\n> ");
    r.line("actor.spawn(function() time.sleep(60) end)");
    r.expect("\nactor 2 (running)\n> ");
}

#[test]
fn help_reads_the_reference() {
    let mut r = Repl::start(&[], &history_file("help"));
    r.line("help(time.after)");
    r.expect("time.after(d)\n    channel that receives the time once after d\n> ");
    r.line("help()");
    r.expect("Channels    chan, ch:send");
    r.expect("\n> ");
    r.line("help('nothing.here')");
    r.expect("help: nothing is documented as \"nothing.here\"\n> ");
    r.line("=1+1");
    r.expect("\n2\n> ");
}

#[test]
fn ctrl_c_at_the_prompt_clears_the_line() {
    let mut r = Repl::start(&[], &history_file("ctrl_c_prompt"));
    r.send("x = 'typed but not run'");
    r.expect("not run'");
    r.send(CTRL_C);
    r.expect("> ");
    // Also inside a multi-line chunk: the chunk is dropped.
    r.line("function f()");
    r.expect(">> ");
    r.send(CTRL_C);
    r.expect("> ");
    r.line("=x");
    r.expect("\nnil\n> ");
}

#[test]
fn background_goroutine_prints_while_the_prompt_waits() {
    let mut r = Repl::start(&[], &history_file("ticker"));
    r.line(
        "n = 0 go(function() while true do n = n + 1 print('tick ' .. n) time.sleep(0.1) end end)",
    );
    r.expect("tick 1\n");
    // Nothing is typed: the ticks still come.
    r.expect("tick 3\n");
    // A half-typed line survives the ticks: each is printed above it and
    // the prompt is drawn again, with the text typed so far.
    r.send("abc");
    r.expect("tick 5\n> abc");
    let rows = r.expect_screen("the ticks above an intact `> abc`", |rows| {
        rows.len() >= 2
            && rows[rows.len() - 1] == "> abc"
            && rows[rows.len() - 2].starts_with("tick ")
    });
    for row in &rows {
        assert!(
            !(row.contains("abc") && row.contains("tick")),
            "garbled line {row:?} in:\n{}",
            rows.join("\n")
        );
    }
    // The line goes on from where it was.
    r.line(" = 1");
    r.expect("\n> ");
    r.line("=abc");
    r.expect("\n1\n");
}

#[test]
fn history_is_kept_across_sessions() {
    let history = history_file("history");
    let mut r = Repl::start(&[], &history);
    r.line("print('from ' .. 'history')");
    r.expect("\nfrom history\n> ");
    r.send(CTRL_D);
    assert_eq!(r.exit_code(), 0);
    let saved = std::fs::read_to_string(&history).expect("the history file is written");
    assert!(
        saved.contains("print('from ' .. 'history')"),
        "history file:\n{saved}"
    );

    let mut r = Repl::start(&[], &history);
    r.send(UP);
    r.expect("print('from ' .. 'history')");
    r.send("\r");
    r.expect("\nfrom history\n> ");
}

#[test]
fn tab_completes_globals_fields_and_methods() {
    let mut r = Repl::start(&[], &history_file("completion"));
    r.send(&format!("string.fo{TAB}"));
    r.expect("rmat");
    r.line("('%d-%s', 7, 'x')");
    r.expect("\n7-x\n> ");
    r.line("s = 'abc'");
    r.expect("\n> ");
    r.send(&format!("s:up{TAB}"));
    r.expect("per");
    r.line("()");
    r.expect("\nABC\n> ");
    r.send(&format!("=str{TAB}"));
    r.expect("ing");
    r.line(".rep('ab', 2)");
    r.expect("\nabab\n> ");
}

#[test]
fn ctrl_d_exits_with_status_0() {
    let mut r = Repl::start(&[], &history_file("ctrl_d"));
    r.send(CTRL_D);
    assert_eq!(r.exit_code(), 0);
}

#[test]
fn os_exit_ends_the_repl_with_its_status() {
    let mut r = Repl::start(&[], &history_file("os_exit"));
    r.line("os.exit(3)");
    assert_eq!(r.exit_code(), 3);
}

#[test]
fn os_exit_from_a_background_goroutine_while_the_prompt_waits() {
    let mut r = Repl::start(&[], &history_file("os_exit_background"));
    r.line("go(function() time.sleep(0.2) print('leaving') os.exit(4) end)");
    r.expect("\n> ");
    r.expect("leaving");
    assert_eq!(r.exit_code(), 4);
}

#[test]
fn dash_i_runs_the_script_then_keeps_its_globals() {
    let script = script_file(
        "dash_i",
        "greeting = 'hello from ' .. arg[1]\nprint('script ran')\n",
    );
    let mut r = Repl::spawn(&["-i", &script, "lugo"], &history_file("dash_i"));
    r.expect("script ran\n");
    r.expect("> ");
    r.line("=greeting");
    r.expect("\nhello from lugo\n> ");
}

#[test]
fn dash_i_shows_the_script_error_and_starts_the_repl() {
    let script = script_file("dash_i_error", "before = 1\nerror('script failed')\n");
    let mut r = Repl::spawn(&["-i", &script], &history_file("dash_i_error"));
    r.expect(".lua:2: script failed\nstack traceback:");
    r.expect("\n> ");
    r.line("=before");
    r.expect("\n1\n> ");
}
