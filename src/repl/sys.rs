//! The REPL's raw OS work, fenced here: the SIGINT flag, the terminal mode
//! saved at start and put back at exit, and flushing C stdio.
//!
//! - SIGINT: the handler only stores `true` in an atomic (async-signal-safe);
//!   the thread that waits on a line polls it with [`take_interrupt`].
//! - Terminal: rustyline puts the terminal in raw mode while it reads a line
//!   and back afterwards. A program that ends while a line is being read (a
//!   goroutine calls `os.exit` while the prompt waits) would leave it raw, so
//!   the mode found at start is put back by [`restore_terminal`], also from
//!   an [`at_exit`] hook for an `exit(3)` the REPL did not make itself.

use std::ffi::c_int;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Set by the SIGINT handler, cleared by [`take_interrupt`].
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// The terminal mode of standard input when the REPL started.
static SAVED_MODE: OnceLock<libc::termios> = OnceLock::new();

/// Leaves bracketed-paste mode (rustyline turns it on while it reads).
const BRACKETED_PASTE_OFF: &[u8] = b"\x1b[?2004l";

extern "C" fn on_sigint(_sig: c_int) {
    // Relaxed: the flag carries no data; the reader only needs to see it.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Makes SIGINT (Ctrl-C while a line runs) set a flag instead of killing
/// the process. Rustyline reads Ctrl-C at the prompt as a key (the terminal
/// does not send the signal in raw mode), so the handler stays for the life
/// of the REPL.
pub fn install_sigint() -> std::io::Result<()> {
    // SAFETY: the handler only stores to an atomic.
    unsafe { lugo::quit::set_handler(libc::SIGINT, on_sigint) }
}

/// Whether SIGINT came since the last call; clears the flag.
pub fn take_interrupt() -> bool {
    INTERRUPTED.swap(false, Ordering::Relaxed)
}

/// Saves the terminal mode of standard input, if it is a terminal, for
/// [`restore_terminal`].
pub fn save_terminal() {
    if !std::io::stdin().is_terminal() {
        return;
    }
    let mut mode = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills the termios it is given when it returns 0;
    // it is read only then.
    let mode = unsafe {
        if libc::tcgetattr(libc::STDIN_FILENO, mode.as_mut_ptr()) != 0 {
            return;
        }
        mode.assume_init()
    };
    let _ = SAVED_MODE.set(mode);
}

/// Runs `f` when the process calls `exit` (3), from whichever thread.
pub fn at_exit(f: extern "C" fn()) -> std::io::Result<()> {
    // SAFETY: `f` is a plain `extern "C" fn()` with no argument, as atexit
    // expects; it lives as long as the program.
    if unsafe { libc::atexit(f) } != 0 {
        return Err(std::io::Error::other("atexit: no room for the handler"));
    }
    Ok(())
}

/// Puts the saved terminal mode back if the terminal was left in raw mode
/// (a line was being read), and moves past the prompt's line. Does nothing
/// when the terminal is already in its normal mode.
pub fn restore_terminal() {
    let Some(saved) = SAVED_MODE.get() else {
        return;
    };
    let mut now = std::mem::MaybeUninit::<libc::termios>::uninit();
    // SAFETY: tcgetattr fills `now` when it returns 0, and it is read only
    // then; tcsetattr reads the saved mode, a valid termios from tcgetattr;
    // write(2) gets live byte slices with their lengths.
    unsafe {
        if libc::tcgetattr(libc::STDIN_FILENO, now.as_mut_ptr()) != 0 {
            return;
        }
        let now = now.assume_init();
        let raw = now.c_lflag & libc::ICANON == 0 && saved.c_lflag & libc::ICANON != 0;
        if !raw {
            return;
        }
        libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, saved);
        let out = [BRACKETED_PASTE_OFF, b"\n"];
        for bytes in out {
            libc::write(libc::STDOUT_FILENO, bytes.as_ptr().cast(), bytes.len());
        }
    }
}

/// Flushes C stdio, where `io.write` buffers, so that what the REPL writes
/// next comes after it.
pub fn flush_c_stdio() {
    // SAFETY: fflush(NULL) flushes every open output stream; no pointer of
    // ours is involved.
    unsafe {
        libc::fflush(std::ptr::null_mut());
    }
}
