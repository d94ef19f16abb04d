//! lugo's `coroutine.resume` core, as a C function (see [`crate::cfn`]).
//!
//! It is Lua's own `auxresume` (lcorolib.c) with additions for the
//! scheduler (`lugo_vm::preempt`, `lugo_vm::ffi::Held`):
//! - while the coroutine runs, the M's running slot names it, so that a
//!   preemption signal arms the hook on the thread actually running;
//! - a yield of the preemption hook (no values, flag set) comes back as
//!   `true, SCHED, KIND_PREEMPT`, which the Lua half forwards outward like
//!   a park: the user's coroutine never sees it;
//! - a coroutine that yielded a scheduler request (a park, a preemption)
//!   is *held*: only the Lua half's forwarding (`resume_held`) resumes it
//!   with the answer; another goroutine that reaches it gets `false,
//!   "cannot resume a coroutine parked in chan receive"`, and the value
//!   on its way stays for the coroutine it was meant for.

use std::ffi::{c_int, CStr};

use lugo_vm::ffi::{self as vmffi, Held};
use lugo_vm::{park, preempt, WaitReason};
use mlua::ffi;

use crate::cfn::{guard, push_str, raise, CFn, Ret};

/// `resume(co, ...)`: the user's `coroutine.resume`.
unsafe extern "C-unwind" fn resume(l: *mut ffi::lua_State) -> c_int {
    guard(l, || resume_body(l, false))
}

/// `resume_held(co, ...)`: resumes a coroutine the scheduler holds with
/// the answer to its request (the Lua half's `forward`).
unsafe extern "C-unwind" fn resume_held(l: *mut ffi::lua_State) -> c_int {
    guard(l, || resume_body(l, true))
}

/// `can_park()`: whether the running thread can park (a yield of it
/// reaches the M).
unsafe extern "C-unwind" fn can_park(l: *mut ffi::lua_State) -> c_int {
    ffi::lua_pushboolean(l, preempt::can_park(l) as c_int);
    1
}

/// `held(co)`: why the scheduler holds `co` (a message), or nil.
unsafe extern "C-unwind" fn held(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let co = ffi::lua_tothread(l, 1);
        match (!co.is_null()).then(|| vmffi::held(co)).flatten() {
            Some(h) => crate::cfn::push_owned(l, h.describe()),
            None => ffi::lua_pushnil(l),
        }
        Ret::N(1)
    })
}

unsafe fn resume_body(l: *mut ffi::lua_State, forwarding: bool) -> Ret {
    {
        let co = ffi::lua_tothread(l, 1);
        if co.is_null() {
            return raise("bad argument #1 to 'resume' (coroutine expected)");
        }
        match (forwarding, vmffi::held(co)) {
            (false, Some(h)) => {
                ffi::lua_pushboolean(l, 0);
                crate::cfn::push_owned(l, format!("cannot resume {}", h.describe()));
                return Ret::N(2);
            }
            (true, None) => return raise("lugo: internal error: forwarding to a free coroutine"),
            (true, Some(_)) => vmffi::set_held(co, None),
            (false, None) => {}
        }
        let narg = ffi::lua_gettop(l) - 1;
        if ffi::lua_checkstack(co, narg) == 0 {
            ffi::lua_pushboolean(l, 0);
            push_str(l, "too many arguments to resume");
            return Ret::N(2);
        }
        ffi::lua_xmove(l, co, narg);
        let slot = preempt::current_slot();
        let outer = slot.map(|s| {
            // A G being stopped stops in its coroutines too (hooks belong
            // to one thread).
            preempt::arm_stop_if_pending(s, co);
            s.swap(co)
        });
        // Its parks reach the M only if this thread's can.
        let forward = preempt::set_forward(preempt::can_park(l));
        let mut nres: c_int = 0;
        let status = ffi::lua_resume(co, l, narg, &mut nres);
        preempt::set_forward(forward);
        if let (Some(s), Some(outer)) = (slot, outer) {
            s.swap(outer);
            preempt::arm_stop_if_pending(s, l);
        }
        match status {
            ffi::LUA_OK | ffi::LUA_YIELD => {
                if status == ffi::LUA_YIELD && nres == 0 && preempt::take_preempted() {
                    vmffi::set_held(co, Some(Held::Suspended));
                    ffi::lua_pushboolean(l, 1);
                    ffi::lua_pushlightuserdata(l, park::sched().0);
                    ffi::lua_pushinteger(l, park::KIND_PREEMPT);
                    return Ret::N(3);
                }
                if status == ffi::LUA_YIELD {
                    vmffi::set_held(co, sched_request(co, nres));
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
    }
}

/// Whether the `nres` values `co` yielded are a scheduler request
/// (`SCHED, kind`), and what holding it means.
unsafe fn sched_request(co: *mut ffi::lua_State, nres: c_int) -> Option<Held> {
    let base = ffi::lua_gettop(co) - nres + 1;
    if nres < 2
        || ffi::lua_type(co, base) != ffi::LUA_TLIGHTUSERDATA
        || ffi::lua_touserdata(co, base) != park::sched().0
    {
        return None;
    }
    let kind = ffi::lua_tointegerx(co, base + 1, std::ptr::null_mut());
    Some(match WaitReason::from_code(kind - park::KIND_PARK) {
        Some(r) if kind >= park::KIND_PARK => Held::Park(r),
        _ => Held::Suspended,
    })
}

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 5] = [
    (c"can_park", can_park),
    (c"resume", resume),
    (c"resume_held", resume_held),
    (c"held", held),
    (c"blocking", blocking),
];

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
        actor.set_blocking(true);
        // Waiting is not running: the CPU budget does not count it.
        // (Timed only under a budget: a line of `io.lines` costs little
        // more than a clock.)
        let start = rt.has_cpu_budget().then(std::time::Instant::now);
        let status = ffi::lua_pcall(l, nargs.max(0), ffi::LUA_MULTRET, 0);
        if let Some(start) = start {
            actor.credit_blocked(start.elapsed());
        }
        actor.set_blocking(false);
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
