//! The coroutine library and the bodies of goroutines, in C (raw C API,
//! see [`crate::cfn`]): Lua's `lcorolib.c` with what the scheduler needs,
//! and nothing a Lua program could see.
//!
//! - **Forwarding.** A coroutine that parks (a channel operation inside
//!   it yields `SCHED, kind`) or is preempted (the hook yields with no
//!   values) is *held*: `resume` yields the request outward with
//!   `lua_yieldk`, to the goroutine's M (through every enclosing resume),
//!   and its continuation resumes the coroutine with the M's answer.
//!   Another goroutine's `resume` of a held coroutine gets `false,
//!   "cannot resume a coroutine parked in chan receive"`, and `close`
//!   raises: only its own goroutine may go on with it.
//! - **Where no yield reaches the M** (a coroutine resumed inside a C call,
//!   or inside such a coroutine) its parks fail before they queue anything
//!   and preemptions wait: `resume` records it (`preempt::set_forward`).
//! - **Transparency** (DESIGN.md): the top of a goroutine looks like Lua's
//!   main thread: `running` says it is the main one, `isyieldable` is
//!   false, `yield` raises `attempt to yield from outside a coroutine`,
//!   `resume` of it fails as resuming a running thread does.
//! - **Goroutine bodies** (`gomain`, `taskmain`): the function runs under a
//!   `lua_pcallk` whose message handler leaves the error object as it is
//!   (so `load` of a bad chunk still returns its message) and keeps the
//!   traceback aside for the panic report; a traceback taken inside ends
//!   with `[C]: in ?`, as under `lua.c`.
//! - **Stops** (`preempt`): a G being stopped stops in its coroutines too
//!   (hooks belong to one thread): `resume` arms the stop hook on both
//!   sides. While a coroutine runs, the M's running slot names it. The
//!   stop's error unwinds the G (its `<close>` handlers run); while a stop
//!   is pending, `resume`, `wrap`, `close`, and lugo's `pcall` and
//!   `xpcall` (Lua's, with this one difference) pass errors on instead of
//!   catching them. `runtime.goexit` is such a stop, and the goroutine's
//!   body takes it for a normal end.

use std::cell::RefCell;
use std::ffi::{c_int, CStr};

use lugo_vm::ffi::{self as vmffi, is_goroutine, Held};
use lugo_vm::{park, preempt, WaitReason};
use mlua::ffi;

use crate::cfn::{guard, push_owned, push_str, raise, CFn, Ret};
use lugo_vm::ffi::CREATOR_SLOTS;

/// How a resume ended, for its caller.
enum Resumed {
    /// `true` and this many values on top of the caller's stack.
    Values(c_int),
    /// `false` and the error object on top of the caller's stack.
    Failed,
    /// A scheduler request of the coroutine (this many values on top of
    /// the caller's stack): forward it.
    Forward(c_int),
}

/// Resumes `co` with the `narg` values on top of `l`'s stack (Lua's
/// `auxresume`, with the scheduler's bookkeeping).
#[inline]
unsafe fn resume_co(l: *mut ffi::lua_State, co: *mut ffi::lua_State, narg: c_int) -> Resumed {
    // The running slot names `co` while it runs (its stop hook armed if a
    // stop is pending) and `l` again after: `co` is then not running, as
    // `disarm` needs, and `l` is, as `preempt_running` needs.
    // SAFETY: `l` runs with `narg` values on top; `co`, kept alive by the
    // caller's stack or upvalue, is a thread of this M's actor (the callers'
    // contract). Stacks get room before values move; `lua_resume` catches
    // `co`'s errors; `push_str` may raise with nothing owned, slot put back.
    unsafe {
        if ffi::lua_checkstack(co, narg) == 0 {
            ffi::lua_pop(l, narg);
            push_str(l, "too many arguments to resume");
            return Resumed::Failed;
        }
        ffi::lua_xmove(l, co, narg);
        let slot = preempt::current_slot();
        let outer = slot.map(|s| {
            preempt::arm_stop_if_pending(s, co);
            s.swap(co)
        });
        // Its parks reach the M only if this thread's can (in the common
        // case they can, and the flag stays as it is).
        let cut = !preempt::can_park(l);
        let forward = cut && preempt::set_forward(false);
        let mut nres: c_int = 0;
        let status = ffi::lua_resume(co, l, narg, &mut nres);
        if cut {
            preempt::set_forward(forward);
        }
        if let (Some(s), Some(outer)) = (slot, outer) {
            s.swap(outer);
            preempt::arm_stop_if_pending(s, l);
        }
        // A preemption armed in `co` that it did not take (it yielded or
        // ended first) is taken off, the user's hook set aside on this M
        // put back (`co` may be resumed next on another), and goes on here.
        if preempt::disarm(co) {
            preempt::preempt_running(l);
        }
        match status {
            ffi::LUA_OK | ffi::LUA_YIELD => {
                if status == ffi::LUA_YIELD {
                    if nres == 0 && preempt::take_preempted() {
                        vmffi::set_held(co, Some(Held::Suspended));
                        ffi::lua_pushlightuserdata(l, park::sched().0);
                        ffi::lua_pushinteger(l, park::KIND_PREEMPT);
                        return Resumed::Forward(2);
                    }
                    if let Some(held) = sched_request(co, nres) {
                        vmffi::set_held(co, Some(held));
                        ffi::lua_xmove(co, l, nres);
                        return Resumed::Forward(nres);
                    }
                }
                if ffi::lua_checkstack(l, nres + 1) == 0 {
                    ffi::lua_pop(co, nres);
                    push_str(l, "too many results to resume");
                    return Resumed::Failed;
                }
                ffi::lua_xmove(co, l, nres);
                Resumed::Values(nres)
            }
            _ => {
                ffi::lua_xmove(co, l, 1);
                Resumed::Failed
            }
        }
    }
}

/// Whether the `nres` values `co` yielded are a scheduler request
/// (`SCHED, kind`), and what holding it means.
#[inline]
unsafe fn sched_request(co: *mut ffi::lua_State, nres: c_int) -> Option<Held> {
    // SAFETY: `co` is a live thread with `nres` values on top (the caller's
    // contract: `resume_co`, after a yield); they are only read (inert).
    unsafe {
        if nres < 2 {
            return None;
        }
        let base = ffi::lua_gettop(co) - nres + 1;
        if ffi::lua_type(co, base) != ffi::LUA_TLIGHTUSERDATA
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
}

/// The coroutine argument of `coroutine.*` at index 1, or a raise.
unsafe fn co_arg(l: *mut ffi::lua_State, fname: &str) -> Result<*mut ffi::lua_State, Ret> {
    // SAFETY: `l` is the running thread of a `coroutine` function's closure,
    // with its arguments on the stack (the callers' contract); reading
    // argument 1 and naming its type are inert.
    unsafe {
        let co = ffi::lua_tothread(l, 1);
        if co.is_null() {
            let t = crate::cfn::type_name(l, 1);
            return Err(raise(format!(
                "bad argument #1 to '{fname}' (coroutine expected, got {t})"
            )));
        }
        Ok(co)
    }
}

/// Why `co` may not be resumed from Lua, if it may not: a goroutine's own
/// thread (it looks like a main thread, which cannot be resumed), or a
/// coroutine the scheduler holds.
unsafe fn refused(co: *mut ffi::lua_State) -> Option<String> {
    // SAFETY: `co` is a live thread of an actor owned by this M (the callers'
    // contract: a thread of the running state, kept alive by its stack or an
    // upvalue), as reading its marks requires.
    unsafe {
        if is_goroutine(co) {
            return Some("cannot resume non-suspended coroutine".into());
        }
        vmffi::held(co).map(|h| format!("cannot resume {}", h.describe()))
    }
}

// ---------------------------------------------------------------- resume

/// `coroutine.resume(co, ...)`. The hot path runs without `guard` (it
/// owns nothing and cannot panic); errors go through it.
unsafe extern "C-unwind" fn resume(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with the coroutine and the values to pass on the stack.
    // `co`, when not null, is a thread of this state kept alive at index 1: a
    // live thread of this M's actor, as its marks require. Refusals end in
    // `guard`; the hot path ends in `finish_resume`, with `co` at 1 and the
    // values above it, as it requires.
    unsafe {
        let co = ffi::lua_tothread(l, 1);
        if co.is_null() {
            return guard(l, || match co_arg(l, "resume") {
                Err(r) => r,
                Ok(_) => unreachable!("not a thread"),
            });
        }
        if is_goroutine(co) || vmffi::held(co).is_some() {
            return guard(l, || {
                ffi::lua_pushboolean(l, 0);
                push_owned(l, refused(co).expect("refused"));
                Ret::N(2)
            });
        }
        finish_resume(l, co, ffi::lua_gettop(l) - 1)
    }
}

/// Acts on how a resume of `co` (argument 1) ended: `true, values`,
/// `false, error`, or forwarding a scheduler request outward. Must be
/// the return expression of a C function (it may yield).
#[inline]
unsafe fn finish_resume(l: *mut ffi::lua_State, co: *mut ffi::lua_State, narg: c_int) -> c_int {
    // SAFETY: `l` is the running thread with `co` at index 1 and `narg`
    // values to pass on top, and this is the return expression of a C
    // function (the contract of `resume` and `resume_k`, the callers): what
    // `resume_co` needs, and a raise or a yield skips only this frame and the
    // C function's, which own nothing. `resume_k` continues the yield, with
    // the coroutine still at 1.
    unsafe {
        match resume_co(l, co, narg) {
            Resumed::Values(n) => {
                ffi::lua_pushboolean(l, 1);
                ffi::lua_insert(l, -(n + 1));
                n + 1
            }
            // A stopping G passes the error on.
            Resumed::Failed if preempt::stopping_g().is_some() => ffi::lua_error(l),
            Resumed::Failed => {
                ffi::lua_pushboolean(l, 0);
                ffi::lua_insert(l, -2);
                2
            }
            Resumed::Forward(n) => ffi::lua_yieldk(l, n, 0, Some(resume_k)),
        }
    }
}

/// Continuation of `resume` after forwarding: the answer is on top of the
/// stack, above the coroutine at index 1.
unsafe extern "C-unwind" fn resume_k(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation of `resume` on its thread, with the
    // coroutine still at 1 and the M's answer to the forwarded request above
    // it, to pass on; the coroutine is held by this goroutine, which may
    // resume it. That is `finish_resume`'s contract (the return expression of
    // this C function).
    unsafe {
        let co = ffi::lua_tothread(l, 1);
        vmffi::set_held(co, None);
        finish_resume(l, co, ffi::lua_gettop(l) - 1)
    }
}

// ---------------------------------------------------------------- wrap

/// `coroutine.wrap(f)`.
unsafe extern "C-unwind" fn wrap(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The new thread gets
    // the function (room: a new thread has `LUA_MINSTACK` slots); the
    // allocations may raise while nothing is owned (a message is made only
    // for a bad argument, instead).
    unsafe {
        guard(l, || {
            if ffi::lua_type(l, 1) != ffi::LUA_TFUNCTION {
                let t = crate::cfn::type_name(l, 1);
                return raise(format!(
                    "bad argument #1 to 'wrap' (function expected, got {t})"
                ));
            }
            let co = ffi::lua_newthread(l);
            ffi::lua_pushvalue(l, 1);
            ffi::lua_xmove(l, co, 1);
            ffi::lua_pushcclosure(l, wrapped, 1);
            Ret::N(1)
        })
    }
}

/// The function `coroutine.wrap` returns (Lua's `auxwrap`); its hot path
/// runs without `guard`, as `resume`'s.
unsafe extern "C-unwind" fn wrapped(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this closure (made by `wrap`: upvalue 1 is its
    // coroutine, kept alive there) on `l`, the running thread, with the
    // values to pass on the stack. `co` is a thread of this state: a live
    // thread of this M's actor, as its marks require. A refusal ends in
    // `guard`; the hot path ends in `finish_wrapped`, with every argument to
    // pass, as it requires.
    unsafe {
        let co = ffi::lua_tothread(l, ffi::lua_upvalueindex(1));
        if is_goroutine(co) || vmffi::held(co).is_some() {
            return guard(l, || {
                push_owned(l, refused(co).expect("refused"));
                wrap_error(l, co)
            });
        }
        finish_wrapped(l, co, ffi::lua_gettop(l))
    }
}

/// As [`finish_resume`], for `wrap`'s function: the values, or a raise.
#[inline]
unsafe fn finish_wrapped(l: *mut ffi::lua_State, co: *mut ffi::lua_State, narg: c_int) -> c_int {
    // SAFETY: `l` is the running thread of `wrap`'s function, whose upvalue
    // is `co`, with `narg` values to pass on top, and this is the return
    // expression of a C function (the contract of `wrapped` and `wrapped_k`,
    // the callers): what `resume_co` needs; an error is raised by `guard`,
    // and a yield skips only frames that own nothing. `wrapped_k` continues
    // the yield.
    unsafe {
        match resume_co(l, co, narg) {
            Resumed::Values(n) => n,
            Resumed::Failed => guard(l, || wrap_error(l, co)),
            Resumed::Forward(n) => ffi::lua_yieldk(l, n, 0, Some(wrapped_k)),
        }
    }
}

unsafe extern "C-unwind" fn wrapped_k(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation of `wrap`'s function on its thread,
    // with the M's answer to the forwarded request on the stack, to pass on;
    // the coroutine (upvalue 1) is held by this goroutine, which may resume
    // it. That is `finish_wrapped`'s contract (the return expression of this
    // C function).
    unsafe {
        let co = ffi::lua_tothread(l, ffi::lua_upvalueindex(1));
        vmffi::set_held(co, None);
        finish_wrapped(l, co, ffi::lua_gettop(l))
    }
}

/// Raises the error on top of the stack as `auxwrap` does: a dead
/// coroutine's to-be-closed variables are closed first, and a string gets
/// the caller's position.
unsafe fn wrap_error(l: *mut ffi::lua_State, co: *mut ffi::lua_State) -> Ret {
    // SAFETY: `l` is the running thread with the error on top, and `co` the
    // coroutine that failed, a thread of the same state (the callers'
    // contract, C function bodies). Closing a dead coroutine runs its pending
    // `__close` handlers and may raise, as `luaL_where` and `lua_concat` may:
    // nothing is owned here.
    unsafe {
        let mut stat = ffi::lua_status(co);
        if stat != ffi::LUA_OK && stat != ffi::LUA_YIELD {
            stat = ffi::lua_closethread(co, l);
            ffi::lua_xmove(co, l, 1);
        }
        // A stop's error passes through as it is.
        if stat != ffi::LUA_ERRMEM
            && ffi::lua_type(l, -1) == ffi::LUA_TSTRING
            && preempt::stopping_g().is_none()
        {
            ffi::luaL_where(l, 1);
            ffi::lua_insert(l, -2);
            ffi::lua_concat(l, 2);
        }
        Ret::Rethrow
    }
}

// ---------------------------------------------------------------- the rest

/// `coroutine.yield(...)`: at the top of a goroutine, as on Lua's main
/// thread, there is nothing to yield to.
unsafe extern "C-unwind" fn yield_(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with the values to yield: `is_goroutine` reads the mark
    // of a live thread of this M's actor; the error ends in `guard`, and
    // `lua_yield` is the return expression, with nothing owned.
    unsafe {
        if is_goroutine(l) {
            return guard(l, || {
                Ret::Raise(0, "attempt to yield from outside a coroutine".into())
            });
        }
        ffi::lua_yield(l, ffi::lua_gettop(l))
    }
}

/// `coroutine.running()`: a goroutine's own thread says it is the main one.
unsafe extern "C-unwind" fn running(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure on `l`, the running thread, with room
    // for two results (`LUA_MINSTACK`): pushing the thread and a boolean is
    // inert, and `is_goroutine` reads the mark of `l`, a live thread of this
    // M's actor.
    unsafe {
        let main = ffi::lua_pushthread(l) != 0;
        ffi::lua_pushboolean(l, (main || is_goroutine(l)) as c_int);
        2
    }
}

/// `coroutine.isyieldable([co])`.
unsafe extern "C-unwind" fn isyieldable(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. `co` is the running
    // thread or the thread at 1 (kept alive there), a thread of this state
    // whose mark `is_goroutine` reads; the other calls are inert.
    unsafe {
        guard(l, || {
            let co = if ffi::lua_isnone(l, 1) != 0 {
                l
            } else {
                match co_arg(l, "isyieldable") {
                    Ok(co) => co,
                    Err(r) => return r,
                }
            };
            let y = !is_goroutine(co) && ffi::lua_isyieldable(co) != 0;
            ffi::lua_pushboolean(l, y as c_int);
            Ret::N(1)
        })
    }
}

/// A coroutine's status as `coroutine.status` tells it (Lua's
/// `auxstatus`), where another goroutine's thread, and a coroutine the
/// scheduler holds, are `normal`: active, not running here (as Lua's main
/// thread is seen from a coroutine).
unsafe fn status_of(l: *mut ffi::lua_State, co: *mut ffi::lua_State) -> &'static CStr {
    // SAFETY: `l` is the running thread and `co` a thread of the same state
    // kept alive by the caller's stack (the callers' contract): its marks and
    // status are read, and `lua_getstack` fills `ar` (zeroed: a valid
    // `lua_Debug`). All inert.
    unsafe {
        if l == co {
            return c"running";
        }
        if is_goroutine(co) || vmffi::held(co).is_some() {
            return c"normal";
        }
        match ffi::lua_status(co) {
            ffi::LUA_YIELD => c"suspended",
            ffi::LUA_OK => {
                let mut ar: ffi::lua_Debug = std::mem::zeroed();
                if ffi::lua_getstack(co, 0, &mut ar) != 0 {
                    c"normal"
                } else if ffi::lua_gettop(co) == 0 {
                    c"dead"
                } else {
                    c"suspended"
                }
            }
            _ => c"dead",
        }
    }
}

/// `coroutine.status(co)`.
unsafe extern "C-unwind" fn status(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. `co` is the thread at
    // 1, kept alive there, as `status_of` requires; pushing a static name may
    // raise (out of memory) while nothing is owned.
    unsafe {
        guard(l, || {
            let co = match co_arg(l, "status") {
                Ok(co) => co,
                Err(r) => return r,
            };
            ffi::lua_pushstring(l, status_of(l, co).as_ptr());
            Ret::N(1)
        })
    }
}

/// `coroutine.close(co)` (Lua's `luaB_close`): a held coroutine or
/// another goroutine's thread is not closed.
unsafe extern "C-unwind" fn close(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. `co` is the thread at
    // 1, kept alive there, as `held` and `status_of` require.
    // `lua_closethread` closes a dead or suspended coroutine (one that runs,
    // or resumed this one, is refused), running its `__close` handlers, which
    // may raise while nothing is owned; its error object moves to `l`, which
    // has room (`LUA_MINSTACK`).
    unsafe {
        guard(l, || {
            let co = match co_arg(l, "close") {
                Ok(co) => co,
                Err(r) => return r,
            };
            if let Some(h) = vmffi::held(co) {
                return raise(format!("cannot close {}", h.describe()));
            }
            match status_of(l, co).to_bytes() {
                b"dead" | b"suspended" => {
                    if ffi::lua_closethread(co, l) == ffi::LUA_OK {
                        ffi::lua_pushboolean(l, 1);
                        Ret::N(1)
                    } else if preempt::stopping_g().is_some() {
                        ffi::lua_xmove(co, l, 1);
                        Ret::Rethrow
                    } else {
                        ffi::lua_pushboolean(l, 0);
                        ffi::lua_xmove(co, l, 1);
                        Ret::N(2)
                    }
                }
                other => raise(format!(
                    "cannot close a {} coroutine",
                    String::from_utf8_lossy(other)
                )),
            }
        })
    }
}

/// `can_park()`: whether the running thread can park (a yield of it
/// reaches the M).
unsafe extern "C-unwind" fn can_park(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure on `l`, the running thread, as
    // `preempt::can_park` requires; pushing a boolean is inert.
    unsafe {
        ffi::lua_pushboolean(l, preempt::can_park(l) as c_int);
        1
    }
}

// ---------------------------------------------------------------- pcall

/// `pcall(f, ...)`: Lua's `luaB_pcall`, but an error of a stopping G
/// (see the module comment) is passed on, not caught.
unsafe extern "C-unwind" fn pcall(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function on `l`, the running thread, with
    // `f, args...`, as Lua's `luaB_pcall`: `luaL_checkany` may raise while
    // nothing is owned, the boolean and the call have room (`LUA_MINSTACK`),
    // and `finish_pcall` continues the call (after a yield, or when called
    // here with its status).
    unsafe {
        ffi::luaL_checkany(l, 1);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_insert(l, 1);
        let status = ffi::lua_pcallk(
            l,
            ffi::lua_gettop(l) - 2,
            ffi::LUA_MULTRET,
            0,
            0,
            Some(finish_pcall),
        );
        finish_pcall(l, status, 0)
    }
}

/// `xpcall(f, msgh, ...)`: Lua's `luaB_xpcall`, with `pcall`'s difference.
/// `msgh` sees a stop's error, as a handler sees `lua.c`'s Ctrl-C.
unsafe extern "C-unwind" fn xpcall(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function on `l`, the running thread, with
    // `f, msgh, args...`, as Lua's `luaB_xpcall`: `luaL_checktype` may raise
    // while nothing is owned, the pushes and the call have room
    // (`LUA_MINSTACK`), and `finish_pcall` continues the call (after a yield,
    // or when called here with its status).
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::luaL_checktype(l, 2, ffi::LUA_TFUNCTION);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_pushvalue(l, 1);
        ffi::lua_rotate(l, 3, 2);
        let status = ffi::lua_pcallk(l, n - 2, ffi::LUA_MULTRET, 2, 2, Some(finish_pcall));
        finish_pcall(l, status, 2)
    }
}

/// Lua's `finishpcall`: `false, error`, or every result; a stopping G's
/// error goes on.
unsafe extern "C-unwind" fn finish_pcall(
    l: *mut ffi::lua_State,
    status: c_int,
    extra: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation of `pcall` and `xpcall` (or they
    // call it, with the call's status) on `l`, the running thread, with
    // `true` and the results, or the error, on top, and `extra` slots below
    // them; a stop's message is static, pushed (room: `LUA_MINSTACK`) and
    // raised while nothing is owned.
    unsafe {
        if status != ffi::LUA_OK && status != ffi::LUA_YIELD {
            if let Some(stop) = preempt::stopping_g() {
                // The stop goes on, with its own message: what a message
                // handler made of it, or an error a `<close>` handler raised
                // as it unwound, says less of why the G ends.
                push_str(l, stop.message());
                ffi::lua_error(l);
            }
            ffi::lua_pushboolean(l, 0);
            ffi::lua_pushvalue(l, -2);
            return 2;
        }
        ffi::lua_gettop(l) - extra as c_int
    }
}

/// `load(chunk, ...)`: Lua's own (upvalue 1), but a reader's error that
/// is a stopping G's is passed on, not returned as `nil, message`.
unsafe extern "C-unwind" fn load(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (upvalue 1 is Lua's `load`) on `l`,
    // the running thread, with its arguments and room for the function
    // (`LUA_MINSTACK`). `lua_callk` without a continuation makes a yield
    // inside an error; an error passes through this frame, which owns
    // nothing, as does the raise of the reader's error.
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        ffi::lua_callk(l, n, ffi::LUA_MULTRET, 0, None);
        let nres = ffi::lua_gettop(l);
        if nres >= 2 && ffi::lua_isnil(l, 1) != 0 && preempt::stopping_g().is_some() {
            ffi::lua_pushvalue(l, 2);
            ffi::lua_error(l);
        }
        nres
    }
}

/// `goexit()`: ends the calling goroutine, as Go's `runtime.Goexit`: its
/// `<close>` handlers run (the stop's error unwinds it) and nothing can
/// catch it. Outside a goroutine (a finalizer on an actor's main thread)
/// it raises an error that says so.
unsafe extern "C-unwind" fn goexit(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread: `in_finalizer` reads its call stack (inert); the errors
    // end in `guard`; the stop's message is static, pushed (that may raise)
    // and raised with nothing owned.
    unsafe {
        // A finalizer runs in whichever G set off the collection: it has no
        // goroutine of its own to end.
        if preempt::in_finalizer(l) {
            return guard(l, || raise("runtime.goexit: in a finalizer"));
        }
        if !preempt::stop_this_g(preempt::Stop::Exit) {
            return guard(l, || raise("runtime.goexit: not in a goroutine"));
        }
        push_str(l, preempt::Stop::Exit.message());
        ffi::lua_error(l)
    }
}

// ---------------------------------------------------------------- goroutine bodies

thread_local! {
    /// The traceback of the last error that reached a goroutine's body,
    /// taken by the message handler where it happened.
    static TRACEBACK: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The message handler of goroutine bodies: keeps the traceback aside and
/// leaves the error object as it is (Lua's `load` runs its parser under
/// the current handler: its message must stay a string).
unsafe extern "C-unwind" fn msgh(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this message handler on `l`, the thread where the
    // error happened. The room for the traceback is checked; making it
    // allocates and may raise (Lua then reports an error in the handler)
    // while nothing is owned; its bytes are copied before it is popped.
    unsafe {
        if ffi::lua_checkstack(l, 2) != 0 {
            ffi::luaL_traceback(l, l, std::ptr::null(), 1);
            let mut len = 0usize;
            let p = ffi::lua_tolstring(l, -1, &mut len);
            let tb = std::slice::from_raw_parts(p as *const u8, len);
            TRACEBACK.with_borrow_mut(|t| {
                t.clear();
                t.push_str(&String::from_utf8_lossy(tb));
            });
            ffi::lua_pop(l, 1);
        }
        1
    }
}

/// The message handler of a goroutine that is not a host's task: as
/// [`msgh`], but a G ended by `runtime.goexit` or an interrupt ends quietly
/// (`gomain_k`), so no traceback is made for it (a tenth of what ending
/// costs without it).
unsafe extern "C-unwind" fn go_msgh(l: *mut ffi::lua_State) -> c_int {
    if matches!(
        preempt::stopping_g(),
        Some(preempt::Stop::Exit | preempt::Stop::Interrupt | preempt::Stop::Leaked)
    ) {
        return 1;
    }
    // SAFETY: Lua calls this message handler on `l`, the thread where the
    // error happened: `msgh`'s contract.
    unsafe { msgh(l) }
}

/// The message of an uncaught error, as `lua.c` words it: a string or a
/// number as it is, an object with `__tostring` through it, else
/// `(error object is a T value)`.
unsafe fn error_message(l: *mut ffi::lua_State, idx: c_int) {
    // SAFETY: `l` is the running thread, with the error object at `idx` and
    // room for two values (the callers' contract: `gomain_k` and
    // `taskmain_k`, C functions with `LUA_MINSTACK` slots). Converting a copy
    // of a number allocates, `__tostring` may run any Lua code, and either
    // may raise: nothing owned is alive then; the type's name is static and
    // the message is handed off (`push_owned`).
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        match ffi::lua_type(l, idx) {
            ffi::LUA_TSTRING | ffi::LUA_TNUMBER => {
                ffi::lua_pushvalue(l, idx);
                ffi::lua_tolstring(l, -1, std::ptr::null_mut());
            }
            _ if ffi::luaL_callmeta(l, idx, c"__tostring".as_ptr()) != 0
                && ffi::lua_type(l, -1) == ffi::LUA_TSTRING => {}
            t => {
                let name = CStr::from_ptr(ffi::lua_typename(l, t));
                push_owned(
                    l,
                    format!("(error object is a {} value)", name.to_string_lossy()),
                );
            }
        }
    }
}

/// `gomain(f, ...)`: the body of every goroutine thread. Runs `f(...)`;
/// an uncaught error returns `SCHED, KIND_PANIC, message, traceback` to
/// the M.
unsafe extern "C-unwind" fn gomain(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function as the body of a goroutine's thread,
    // on it, with the creator slots then `f, args...` (`chan::spawn`): `f`
    // is past them, and `gomain_k` takes the stack `run_body` leaves.
    unsafe { run_body(l, CREATOR_SLOTS + 1, go_msgh, gomain_k) }
}

/// Runs the function at `at` on `l` (its arguments above it) under the
/// message handler `h`, which goes at `at`; `k` continues the protected
/// call (after a yield, or called here with its status).
///
/// # Safety
/// `l` is the running thread of a goroutine's body (a C function: room for
/// the handler), with the function at `at`.
unsafe fn run_body(
    l: *mut ffi::lua_State,
    at: c_int,
    h: ffi::lua_CFunction,
    k: ffi::lua_KFunction,
) -> c_int {
    // SAFETY: as the contract says; the pushes have room, and nothing owned
    // is alive across `lua_pcallk` (it may yield into `k`).
    unsafe {
        let n = ffi::lua_gettop(l);
        ffi::lua_pushcfunction(l, h);
        ffi::lua_insert(l, at);
        let status = ffi::lua_pcallk(l, n - at, ffi::LUA_MULTRET, at, 0, Some(k));
        k(l, status, 0)
    }
}

/// Pushes the message of the error object at `idx` and the traceback the
/// handler kept: how an uncaught error is reported.
///
/// # Safety
/// As [`error_message`], with room for two more values.
unsafe fn push_uncaught(l: *mut ffi::lua_State, idx: c_int) {
    // SAFETY: the contract is `error_message`'s; the traceback is handed off
    // (`push_owned`): nothing owned is alive across the raising push.
    unsafe {
        error_message(l, idx);
        push_owned(l, TRACEBACK.with_borrow_mut(std::mem::take));
    }
}

unsafe extern "C-unwind" fn gomain_k(
    l: *mut ffi::lua_State,
    status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation of `gomain` (or `gomain` calls it,
    // with the call's status) on the goroutine's thread; after an error the
    // handler and the error object are on the stack, the pushes have room
    // (`LUA_MINSTACK`), `error_message` finds the error below the two values
    // pushed, and the traceback is handed off (`push_owned`): nothing owned
    // is alive across the calls that may raise.
    unsafe {
        if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
            return 0;
        }
        if matches!(
            preempt::stopping_g(),
            Some(preempt::Stop::Exit | preempt::Stop::Interrupt | preempt::Stop::Leaked)
        ) {
            // runtime.goexit, or an interrupt (`runtime.interrupt`, a
            // group's grace): its <close> handlers have run; it ends
            // quietly, as by goexit (a host's task gets its error).
            return 0;
        }
        // An uncaught error: the panic, with the traceback the handler kept.
        ffi::lua_pushlightuserdata(l, park::sched().0);
        ffi::lua_pushinteger(l, park::KIND_PANIC);
        push_uncaught(l, -3);
        4
    }
}

/// Where a task's `done` is on its body's stack (past the creator slots).
const DONE: c_int = CREATOR_SLOTS + 1;

/// `taskmain(done, f, ...)`: the body of a goroutine the host waits for
/// (a task): `done(true, results...)`, or `done(false, message,
/// traceback)`.
unsafe extern "C-unwind" fn taskmain(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function as the body of a task's goroutine
    // thread, on it, with the creator slots then `done, f, args...`
    // (`chan::spawn`): `f` is 2 past them, and `taskmain_k` takes the stack
    // `run_body` leaves, `[creator..., done, msgh, ...]`.
    unsafe { run_body(l, DONE + 1, msgh, taskmain_k) }
}

unsafe extern "C-unwind" fn taskmain_k(
    l: *mut ffi::lua_State,
    status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation of `taskmain` (or `taskmain` calls
    // it, with the call's status) on the task's thread, with `done` at
    // `DONE`, the handler above it, then the results or the error object. `done` is called
    // with room (`LUA_MINSTACK`) and `task_done_k` as its continuation (it
    // may yield); `error_message` finds the error on top, and the traceback
    // is handed off (`push_owned`): nothing owned is alive across the calls
    // that may raise.
    unsafe {
        if status == ffi::LUA_OK || status == ffi::LUA_YIELD {
            // [creator..., done, msgh, results...]
            ffi::lua_pushboolean(l, 1);
            ffi::lua_replace(l, DONE + 1);
            let nres = ffi::lua_gettop(l) - DONE;
            ffi::lua_callk(l, nres, 0, 0, Some(task_done_k));
            return 0;
        }
        if preempt::stopping_g() == Some(preempt::Stop::Exit) {
            // runtime.goexit: a normal end, without results.
            ffi::lua_settop(l, DONE);
            ffi::lua_pushboolean(l, 1);
            ffi::lua_callk(l, 1, 0, 0, Some(task_done_k));
            return 0;
        }
        // [creator..., done, msgh, error]
        push_uncaught(l, -1);
        // [creator..., done, msgh, error, message, traceback]
        ffi::lua_remove(l, -3);
        ffi::lua_pushboolean(l, 0);
        ffi::lua_replace(l, DONE + 1);
        ffi::lua_callk(l, 3, 0, 0, Some(task_done_k));
        0
    }
}

unsafe extern "C-unwind" fn task_done_k(
    _l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    0
}

/// The global functions lugo installs in place of Lua's.
pub(crate) const GLOBALS: [(&CStr, CFn); 2] = [(c"pcall", pcall), (c"xpcall", xpcall)];

/// `load`, with Lua's own at upvalue 1 (see [`load`]).
pub(crate) const LOAD: CFn = load;

/// The coroutine functions lugo installs in place of Lua's
/// (`coroutine.create` stays Lua's own).
pub(crate) const LIBRARY: [(&CStr, CFn); 7] = [
    (c"resume", resume),
    (c"wrap", wrap),
    (c"yield", yield_),
    (c"running", running),
    (c"isyieldable", isyieldable),
    (c"status", status),
    (c"close", close),
];

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 4] = [
    (c"can_park", can_park),
    (c"goexit", goexit),
    (c"gomain", gomain),
    (c"taskmain", taskmain),
];
