//! Where the REPL's output goes: `print` from any goroutine of any actor,
//! the values and errors of the lines, background panics.
//!
//! Two modes, switched by the REPL thread around each `readline`:
//!
//! - **prompt** (a line is being read and rustyline gave us an
//!   `ExternalPrinter`): writes are queued and one printer thread hands them
//!   to the printer, which prints them above the prompt and redraws it, so a
//!   ticker goroutine does not garble the line being typed;
//! - **direct** (a line runs, or no terminal): writes go straight to stdout
//!   or stderr, after flushing C stdio (where `io.write` buffers).
//!
//! Invariants:
//! - a write never waits for rustyline: the printer's `print` can block (its
//!   channel holds one message) while the REPL thread waits for the main
//!   actor's state in the completer, and that state may be held by the very
//!   goroutine that prints; so goroutines only queue, the printer thread
//!   waits;
//! - the mode is read and the direct write done under one lock, so the
//!   prompt is never drawn in the middle of a direct write;
//! - [`Console::prompt_done`] returns once the queue is printed: what a
//!   goroutine printed while the line was typed comes before the line's own
//!   output.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use mlua::{Lua, MultiValue, Value};
use rustyline::ExternalPrinter;

use super::sys;

/// How long [`Console::prompt_done`] and [`Console::close`] wait for the
/// queue to be printed. Rustyline's printer returns at once unless its
/// one-slot channel is full while the line editor is busy; the REPL must
/// not hang on that.
const DRAIN_LIMIT: Duration = Duration::from_millis(500);

/// At exit while a line is read: how long the line editor is given to draw
/// the last message it was handed (it does within microseconds; there is
/// no signal for "drawn").
const EXIT_GRACE: Duration = Duration::from_millis(50);

/// Which standard stream a direct write goes to.
#[derive(Clone, Copy)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// The output of the REPL and of every goroutine's `print`.
pub struct Console {
    inner: Mutex<Inner>,
    /// Signalled when the queue gets a message, is printed, or closes.
    changed: Condvar,
}

#[derive(Default)]
struct Inner {
    /// A printer thread runs (rustyline gave a printer: a terminal).
    printer: bool,
    /// A line is being read: writes are queued for the printer.
    prompt: bool,
    /// Messages for the printer, oldest first.
    queue: VecDeque<String>,
    /// The printer thread holds a message it has taken off the queue.
    printing: bool,
    /// The program is ending: the printer thread stops.
    closed: bool,
}

impl Console {
    pub fn new() -> Arc<Console> {
        Arc::new(Console {
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A poisoned lock only means a writer panicked mid-write; the state
        // (flags and a queue) stays consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the printer thread that prints queued messages above the
    /// prompt through `printer`.
    pub fn attach(
        self: &Arc<Console>,
        mut printer: impl ExternalPrinter + Send + 'static,
    ) -> std::io::Result<()> {
        let console = self.clone();
        std::thread::Builder::new()
            .name("lugo-repl-print".into())
            .spawn(move || loop {
                let msg = {
                    let mut inner = console.lock();
                    loop {
                        if inner.closed {
                            return;
                        }
                        if let Some(msg) = inner.queue.pop_front() {
                            inner.printing = true;
                            break msg;
                        }
                        inner = console
                            .changed
                            .wait(inner)
                            .unwrap_or_else(|e| e.into_inner());
                    }
                };
                if printer.print(msg.clone()).is_err() {
                    write_direct(msg.as_bytes(), Stream::Stdout);
                }
                console.lock().printing = false;
                console.changed.notify_all();
            })?;
        self.lock().printer = true;
        Ok(())
    }

    /// Writes `text` above the prompt if a line is being read, else
    /// directly to `stream`.
    pub fn write(&self, text: &[u8], stream: Stream) {
        let mut inner = self.lock();
        if inner.prompt && !inner.closed {
            inner
                .queue
                .push_back(String::from_utf8_lossy(text).into_owned());
            drop(inner);
            self.changed.notify_all();
            return;
        }
        write_direct(text, stream);
    }

    /// The REPL thread is about to read a line.
    pub fn prompt_shown(&self) {
        let mut inner = self.lock();
        inner.prompt = inner.printer;
    }

    /// The REPL thread has read a line: later writes are direct; returns
    /// once what was queued while the line was typed is printed.
    pub fn prompt_done(&self) {
        let mut inner = self.lock();
        inner.prompt = false;
        drop(self.drained(inner));
    }

    /// The program ends: lets the printer finish the queue (bounded), then
    /// stops it; returns what it did not print. Later writes are direct.
    pub fn close(&self) -> Vec<String> {
        let inner = self.drained(self.lock());
        let grace = inner.prompt;
        drop(inner);
        if grace {
            std::thread::sleep(EXIT_GRACE);
        }
        let mut inner = self.lock();
        inner.closed = true;
        inner.prompt = false;
        let rest = std::mem::take(&mut inner.queue).into();
        drop(inner);
        self.changed.notify_all();
        rest
    }

    /// Waits (at most [`DRAIN_LIMIT`]) until the printer has printed the
    /// queue.
    fn drained<'a>(&'a self, mut inner: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        let deadline = Instant::now() + DRAIN_LIMIT;
        while !inner.closed && (inner.printing || !inner.queue.is_empty()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            inner = match self.changed.wait_timeout(inner, left) {
                Ok((inner, _)) => inner,
                Err(e) => e.into_inner().0,
            };
        }
        inner
    }
}

fn write_direct(text: &[u8], stream: Stream) {
    sys::flush_c_stdio();
    // Errors (a closed stdout) are dropped, as C's print drops them.
    let _ = match stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text).and_then(|()| out.flush())
        }
        Stream::Stderr => std::io::stderr().lock().write_all(text),
    };
}

/// `v` as `print` and `tostring` show it (Lua 5.4's `luaL_tolstring`:
/// `__tostring`, `__name`, numbers as `%.14g`).
pub fn display(lua: &Lua, v: &Value) -> mlua::Result<Vec<u8>> {
    Ok(match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v.clone())? {
            Some(s) => s.as_bytes().to_vec(),
            None => v.to_string()?.into_bytes(),
        },
        other => other.to_string()?.into_bytes(),
    })
}

/// `values` shown tab-separated and ended by a newline, as `print` does.
pub fn display_all(lua: &Lua, values: &MultiValue) -> mlua::Result<Vec<u8>> {
    line_of(values, |v| display(lua, v))
}

/// `values`, each as `show` shows it, tab-separated and ended by a newline.
pub fn line_of(
    values: &MultiValue,
    show: impl Fn(&mlua::Value) -> mlua::Result<Vec<u8>>,
) -> mlua::Result<Vec<u8>> {
    let mut line = Vec::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            line.push(b'\t');
        }
        line.extend(show(v)?);
    }
    line.push(b'\n');
    Ok(line)
}

/// The REPL's `print`, a host function of every actor: Lua's `print`
/// written through `console`.
pub fn print_function(
    console: Arc<Console>,
) -> impl Fn(&Lua, MultiValue) -> mlua::Result<()> + Send + Sync + 'static {
    move |lua, args| {
        let line = display_all(lua, &args)?;
        console.write(&line, Stream::Stdout);
        Ok(())
    }
}
