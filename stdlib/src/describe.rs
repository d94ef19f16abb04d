//! `describe(v)`: what the REPL shows of lugo's own values, instead of
//! `chan: 0x...`: `chan(cap 0, len 0, open)`, `actor 2 (running)`,
//! `conn 127.0.0.1:5000 -> 127.0.0.1:41000`, `context (canceled)`,
//! `mutex (locked)`, `waitgroup (count 2)`. Other values: nil (the REPL
//! shows them itself). Dumps say with it what a goroutine waits on.

use std::ffi::{c_int, CStr};

use mlua::ffi;

use crate::cfn::{check, guard, push_owned, CFn, Ret};
use crate::context::Ctx;
use crate::copy::ActorHandle;
use crate::net::NetSock;
use lugo_vm::chan::Chan;
use lugo_vm::sema::{RwMutex, SemMutex, Semaphore, WaitGroup};

/// The description of the lugo value at `idx`, if it is one.
///
/// # Safety
/// `l` is running a closure made by `Registry` (what `check` needs), with
/// a value at `idx`; the borrows end here.
unsafe fn describe_at(l: *mut ffi::lua_State, idx: c_int) -> Option<String> {
    // SAFETY: the contract is `check`'s, for each type tried.
    unsafe {
        if let Some(ch) = check::<Chan>(l, idx) {
            let state = if ch.is_closed() { "closed" } else { "open" };
            return Some(format!("chan(cap {}, len {}, {state})", ch.cap(), ch.len()));
        }
        if let Some(h) = check::<ActorHandle>(l, idx) {
            let state = if h.0.has_ended() { "ended" } else { "running" };
            return Some(format!("actor {} ({state})", h.0.id));
        }
        if let Some(s) = check::<NetSock>(l, idx) {
            return Some(s.describe());
        }
        if let Some(m) = check::<SemMutex>(l, idx) {
            let state = if m.is_locked() { "locked" } else { "unlocked" };
            return Some(format!("mutex ({state})"));
        }
        if let Some(wg) = check::<WaitGroup>(l, idx) {
            return Some(format!("waitgroup (count {})", wg.count()));
        }
        if check::<RwMutex>(l, idx).is_some() {
            return Some("rwmutex".into());
        }
        if let Some(s) = check::<Semaphore>(l, idx) {
            return Some(format!("semaphore ({} of {} held)", s.held(), s.size()));
        }
        if let Some(c) = crate::cfn::Closure::of(l).arc::<Ctx>(l, idx) {
            return Some(format!("context ({})", c.state_word()));
        }
        None
    }
}

/// `describe(v)`: a string, or nil for a value that is not lugo's.
unsafe extern "C-unwind" fn describe(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its argument at 1 (`describe_at`'s contract);
    // `guard` is its last act, and the string is handed off (`push_owned`:
    // nothing owned is alive across the push).
    unsafe {
        guard(l, || match describe_at(l, 1) {
            Some(s) => {
                push_owned(l, s);
                Ret::N(1)
            }
            None => {
                ffi::lua_pushnil(l);
                Ret::N(1)
            }
        })
    }
}

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 1] = [(c"describe", describe)];
