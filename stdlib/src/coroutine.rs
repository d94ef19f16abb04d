//! lugo's `coroutine.resume` core, as a C function (see [`crate::cfn`]).
//!
//! It is Lua's own `auxresume` (lcorolib.c) with two additions for
//! preemption (`lugo_vm::preempt`):
//! - while the coroutine runs, the M's running slot names it, so that a
//!   preemption signal arms the hook on the thread actually running;
//! - a yield of the preemption hook (no values, flag set) comes back as
//!   `true, SCHED, KIND_PREEMPT`, which the Lua half forwards outward like
//!   a park: the user's coroutine never sees it.

use std::ffi::{c_int, CStr};

use lugo_vm::{park, preempt};
use mlua::ffi;

use crate::cfn::{guard, push_str, raise, CFn, Ret};

unsafe extern "C-unwind" fn resume(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let co = ffi::lua_tothread(l, 1);
        if co.is_null() {
            return raise("bad argument #1 to 'resume' (coroutine expected)");
        }
        let narg = ffi::lua_gettop(l) - 1;
        if ffi::lua_checkstack(co, narg) == 0 {
            ffi::lua_pushboolean(l, 0);
            push_str(l, "too many arguments to resume");
            return Ret::N(2);
        }
        ffi::lua_xmove(l, co, narg);
        let slot = preempt::current_slot();
        let outer = slot.map(|s| s.swap(co));
        // A G being stopped stops in its coroutines too (hooks belong to
        // one thread).
        preempt::arm_stop_if_pending(co);
        let mut nres: c_int = 0;
        let status = ffi::lua_resume(co, l, narg, &mut nres);
        if let (Some(s), Some(outer)) = (slot, outer) {
            s.swap(outer);
        }
        preempt::arm_stop_if_pending(l);
        match status {
            ffi::LUA_OK | ffi::LUA_YIELD => {
                if status == ffi::LUA_YIELD && nres == 0 && preempt::take_preempted() {
                    ffi::lua_pushboolean(l, 1);
                    ffi::lua_pushlightuserdata(l, park::sched().0);
                    ffi::lua_pushinteger(l, park::KIND_PREEMPT);
                    return Ret::N(3);
                }
                if ffi::lua_checkstack(l, nres + 1) == 0 {
                    ffi::lua_pop(co, nres);
                    ffi::lua_pushboolean(l, 0);
                    push_str(l, "too many results to resume");
                    return Ret::N(2);
                }
                ffi::lua_pushboolean(l, 1);
                ffi::lua_xmove(co, l, nres);
                Ret::N(nres + 1)
            }
            _ => {
                ffi::lua_pushboolean(l, 0);
                ffi::lua_xmove(co, l, 1);
                Ret::N(2)
            }
        }
    })
}

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 2] = [(c"resume", resume), (c"blocking", blocking)];

/// `blocking(name, f, ...)`: calls `f(...)` with the M's P marked as in a
/// blocking call, so sysmon can hand the P to another M meanwhile (see
/// `lugo_vm::sched::syscall`). For the stdlib's calls that wait on the
/// outside world: `io.read`, file reads and lines, `os.execute`.
unsafe extern "C-unwind" fn blocking(l: *mut ffi::lua_State) -> c_int {
    let nargs = ffi::lua_gettop(l) - 2;
    let status = {
        // The runtime handle lives in this block only: the raise below
        // must not skip its destructor (ffi rule 2).
        let actor = crate::cfn::actor(l);
        let rt = actor.runtime();
        let pid = rt.enter_syscall();
        // Waiting is not running: the CPU budget does not count it.
        // (Timed only under a budget: a line of `io.lines` costs little
        // more than a clock.)
        let start = rt.has_cpu_budget().then(std::time::Instant::now);
        let status = ffi::lua_pcall(l, nargs.max(0), ffi::LUA_MULTRET, 0);
        if let Some(start) = start {
            actor.credit_blocked(start.elapsed());
        }
        if let Some(pid) = pid {
            rt.exit_syscall(pid);
        }
        status
    };
    if status != ffi::LUA_OK {
        name_argerror(l);
        ffi::lua_error(l);
    }
    ffi::lua_gettop(l) - 1
}

/// Called through `blocking`, a C function has no name for Lua's
/// `bad argument #1 to '?'`: put back the name (argument 1 of `blocking`)
/// and the caller's position, as a direct call would have had. Owns
/// nothing across its raising calls: the fixed message is handed off.
unsafe fn name_argerror(l: *mut ffi::lua_State) {
    if ffi::lua_type(l, -1) != ffi::LUA_TSTRING || ffi::lua_type(l, 1) != ffi::LUA_TSTRING {
        return;
    }
    let fixed = {
        let (msg, name) = (str_at(l, -1), str_at(l, 1));
        if !msg.starts_with("bad argument #") || !msg.contains(" to '?' ") {
            return;
        }
        msg.replacen(" to '?' ", &format!(" to '{name}' "), 1)
    };
    ffi::lua_pop(l, 1);
    // Level 1 is the Lua wrapper that called `blocking`; 2 its caller.
    ffi::luaL_where(l, 2);
    crate::cfn::push_owned(l, fixed);
    ffi::lua_concat(l, 2);
}

/// The string at `idx` (it is one), borrowed from the state.
unsafe fn str_at<'a>(l: *mut ffi::lua_State, idx: c_int) -> std::borrow::Cow<'a, str> {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len))
}
