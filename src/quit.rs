//! Dumps on a signal. SIGQUIT (Ctrl-\): print every goroutine's stack to
//! stderr and exit 2, as a Go program does; in the REPL, print the
//! goroutine listing (`runtime.ps()`'s) and go on. SIGUSR1: print every
//! goroutine's stack and go on (the JVM's `jstack` habit). The command
//! line installs them; an embedding host decides for itself.
//!
//! The handlers only write a byte naming the signal to a pipe
//! (async-signal-safe); a thread waiting on the pipe does the rest.

use std::ffi::c_int;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::Duration;

/// Write end of the pipe, for the handler.
static PIPE_W: AtomicI32 = AtomicI32::new(-1);

extern "C" fn on_signal(sig: c_int) {
    let fd = PIPE_W.load(Ordering::Relaxed);
    if fd >= 0 {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; `fd` is the pipe's write
        // end, open for the life of the process; one byte from a live stack.
        unsafe {
            libc::write(fd, &b as *const u8 as *const libc::c_void, 1);
        }
    }
}

/// How long a dump that lets the program go on waits for an actor's
/// state (an actor whose goroutine is in a blocking call is listed
/// without stacks).
const STATE_WAIT: Duration = Duration::from_millis(100);

/// Installs the SIGQUIT and SIGUSR1 dumps for `rt`; `repl`: SIGQUIT
/// prints the goroutine listing and the program goes on.
pub fn install(rt: lugo_vm::Runtime, repl: bool) -> std::io::Result<()> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe(2) fills the two descriptors of a valid 2-element array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let [r, w] = fds;
    PIPE_W.store(w, Ordering::Relaxed);
    std::thread::Builder::new()
        .name("lugo-sigquit".into())
        .spawn(move || {
            let mut b = 0u8;
            // SAFETY: a blocking read of one byte into a live stack byte from
            // the pipe's read end, which this thread owns.
            while unsafe { libc::read(r, &mut b as *mut u8 as *mut libc::c_void, 1) } == 1 {
                match c_int::from(b) {
                    libc::SIGUSR1 => eprint!("SIGUSR1: goroutine dump\n{}", rt.dump(STATE_WAIT)),
                    _ if repl => eprint!("\n{}", rt.ps(STATE_WAIT)),
                    _ => {
                        let dump = rt.stop_and_dump(Duration::from_secs(1));
                        eprint!("SIGQUIT: quit\n{dump}");
                        if let Some(path) = lugo_vm::trace::dump_flight() {
                            eprintln!("lugo: flight recorder written to {}", path.display());
                        }
                        std::process::exit(2);
                    }
                }
            }
        })?;
    // SAFETY: the handler only calls write(2), which is async-signal-safe.
    unsafe {
        set_handler(libc::SIGQUIT, on_signal)?;
        set_handler(libc::SIGUSR1, on_signal)
    }
}

/// Makes `handler` the handler of signal `sig`, with `SA_RESTART` (system
/// calls of other threads, an M in a blocking read, do not fail with
/// EINTR). The command uses it for SIGQUIT here and SIGINT in the REPL.
///
/// # Safety
/// `handler` runs in signal context: it may only do async-signal-safe
/// things (store to an atomic, write(2)).
pub unsafe fn set_handler(sig: c_int, handler: extern "C" fn(c_int)) -> std::io::Result<()> {
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
    // the handler has the plain one-argument signature (no SA_SIGINFO).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
