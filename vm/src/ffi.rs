//! Raw Lua C API: the one module of lugo-vm that touches `lua_State`.
//!
//! The hot paths (resuming a G, moving a value through a channel) bypass
//! mlua's safe API, which costs 100-200 ns per call in locking, reference
//! bookkeeping and conversions. Everything here runs on the M that owns the
//! actor whose state it touches (actor invariant 2).
//!
//! Values in flight. A Lua value sent on a channel is stored in the actor's
//! *values table* (a registry table) with `luaL_ref`, and travels as
//! [`Msg::Slot`], plain data. Whoever delivers it pushes it with
//! [`push_msg`], which also frees the slot. A `Msg::Slot` must be delivered
//! or released with [`release_msg`]; dropping it leaks the value until the
//! actor ends.

use std::ffi::{c_int, c_void};
use std::ptr;

use mlua::ffi;

use crate::g::{Msg, SelectSends, WaitReason, Wake};
use crate::park;
use crate::preempt;

/// Registry key of the values table (its address is the key).
static VALUES_KEY: u8 = 0;

/// A Lua thread (coroutine) by its raw state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LuaThread(pub *mut ffi::lua_State);

// SAFETY: a `LuaThread` is an address; it is only dereferenced (through the
// Lua C API) by the M that owns the actor the thread belongs to.
unsafe impl Send for LuaThread {}
// SAFETY: as above: sharing the address does not touch the state.
unsafe impl Sync for LuaThread {}

/// Prepares a new state: the values table, and a zero goroutine mark in
/// the main thread's extra space (new threads copy it from there).
pub fn init_state(lua: &mlua::Lua) -> mlua::Result<()> {
    // SAFETY: `exec_raw` runs the closure on the state's own stack under
    // mlua's lock, inside a protected call; we push one table and pop it
    // into the registry, leaving the stack balanced. The extra space is
    // LUA_EXTRASPACE (pointer-sized, aligned) bytes that Lua reserves for
    // the embedder and mlua does not use.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, values_key());
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_MAINTHREAD);
            let main = ffi::lua_tothread(l, -1);
            *(ffi::lua_getextraspace(main) as *mut usize) = 0;
            ffi::lua_pop(l, 1);
        })
    }
}

/// Marks `th` as a goroutine's own thread.
///
/// # Safety
/// `th` is a live thread of an actor owned by the calling M.
pub unsafe fn mark_goroutine(th: LuaThread) {
    *(ffi::lua_getextraspace(th.0) as *mut usize) = 1;
}

/// Whether `th` is a goroutine's own thread.
///
/// # Safety
/// As [`mark_goroutine`].
pub unsafe fn is_goroutine(th: *mut ffi::lua_State) -> bool {
    *(ffi::lua_getextraspace(th) as *const usize) != 0
}

fn values_key() -> *const c_void {
    &VALUES_KEY as *const u8 as *const c_void
}

/// Pushes the values table.
///
/// # Safety
/// `l` is a valid state (or thread) of an actor owned by the calling M, with
/// one free stack slot.
pub unsafe fn push_values(l: *mut ffi::lua_State) {
    ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, values_key());
}

/// A Lua number with its subtype.
pub enum Number {
    /// An integer.
    Integer(i64),
    /// A float, also one with an integral value (7.0 stays a float).
    Float(f64),
}

/// The number at `idx` (`lua_isinteger` decides, not `lua_tointegerx`,
/// which would take 7.0 for 7).
///
/// # Safety
/// `l` is a valid state and the value at `idx` is a number.
pub unsafe fn number_at(l: *mut ffi::lua_State, idx: c_int) -> Number {
    if ffi::lua_isinteger(l, idx) != 0 {
        Number::Integer(ffi::lua_tointeger(l, idx))
    } else {
        Number::Float(ffi::lua_tonumber(l, idx))
    }
}

/// Turns the value at `idx` into a message (stores it in the values table).
///
/// # Safety
/// As [`push_values`], with two free stack slots and a valid `idx`.
pub unsafe fn to_msg(l: *mut ffi::lua_State, idx: c_int) -> Msg {
    match ffi::lua_type(l, idx) {
        ffi::LUA_TNIL | ffi::LUA_TNONE => Msg::Nil,
        ffi::LUA_TBOOLEAN => Msg::Boolean(ffi::lua_toboolean(l, idx) != 0),
        ffi::LUA_TNUMBER => match number_at(l, idx) {
            Number::Integer(i) => Msg::Integer(i),
            Number::Float(n) => Msg::Number(n),
        },
        _ => {
            let idx = ffi::lua_absindex(l, idx);
            push_values(l);
            ffi::lua_pushvalue(l, idx);
            let r = ffi::luaL_ref(l, -2);
            ffi::lua_pop(l, 1);
            Msg::Slot(r)
        }
    }
}

/// Pushes the value of `msg`, freeing its slot.
///
/// # Safety
/// As [`push_values`], with two free stack slots.
pub unsafe fn push_msg(l: *mut ffi::lua_State, msg: Msg) {
    match msg {
        Msg::Nil => ffi::lua_pushnil(l),
        Msg::Boolean(b) => ffi::lua_pushboolean(l, b as c_int),
        Msg::Integer(i) => ffi::lua_pushinteger(l, i),
        Msg::Number(n) => ffi::lua_pushnumber(l, n),
        Msg::Slot(r) => {
            push_values(l);
            ffi::lua_rawgeti(l, -1, r as ffi::lua_Integer);
            ffi::luaL_unref(l, -2, r);
            ffi::lua_remove(l, -2);
        }
        Msg::Copied(p) => match COPIED_PUSHER.get() {
            Some(push) => push(l, &p),
            None => ffi::lua_pushnil(l),
        },
    }
}

/// Rebuilds a copied value in a state (the stdlib knows its userdata).
pub type CopiedPusher = unsafe fn(*mut ffi::lua_State, &crate::portable::Portable);

static COPIED_PUSHER: std::sync::OnceLock<CopiedPusher> = std::sync::OnceLock::new();

/// Sets how [`Msg::Copied`] values are rebuilt (once per process).
pub fn set_copied_pusher(f: CopiedPusher) {
    let _ = COPIED_PUSHER.set(f);
}

/// Frees the slot of a message that will not be delivered.
///
/// # Safety
/// As [`push_values`].
pub unsafe fn release_msg(l: *mut ffi::lua_State, msg: Msg) {
    if let Msg::Slot(r) = msg {
        push_values(l);
        ffi::luaL_unref(l, -1, r);
        ffi::lua_pop(l, 1);
    }
}

/// What one resume of a G came back with.
pub enum Resumed {
    /// Yielded a park request.
    Parked(WaitReason),
    /// Yielded `runtime.gosched()`.
    Gosched,
    /// Preempted by sysmon (a hook yield, or one forwarded from a nested
    /// coroutine).
    Preempted,
    /// Returned, or `runtime.goexit()`.
    Exited,
    /// An uncaught error: message and Lua traceback.
    Panicked(String, String),
}

unsafe fn string_at(l: *mut ffi::lua_State, idx: c_int) -> String {
    let mut len = 0usize;
    let p = ffi::lua_tolstring(l, idx, &mut len);
    if p.is_null() {
        return String::new();
    }
    String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len)).into_owned()
}

/// Pushes the results `wake` describes; returns how many.
unsafe fn push_wake(th: *mut ffi::lua_State, wake: Option<Wake>) -> c_int {
    match wake {
        None | Some(Wake::Unit) => 0,
        Some(Wake::Recv(m, ok)) => {
            push_msg(th, m);
            ffi::lua_pushboolean(th, ok as c_int);
            2
        }
        Some(Wake::Select { case, recv }) => {
            ffi::lua_pushinteger(th, case as ffi::lua_Integer);
            match recv {
                None => 1,
                Some((m, ok)) => {
                    push_msg(th, m);
                    ffi::lua_pushboolean(th, ok as c_int);
                    3
                }
            }
        }
        Some(Wake::Io(why)) => {
            ffi::lua_pushinteger(th, why as ffi::lua_Integer);
            1
        }
        Some(Wake::SendClosed(unsent)) => {
            if let Some(m) = unsent {
                release_msg(th, m);
            }
            let msg = crate::chan::SEND_ON_CLOSED;
            ffi::lua_pushlightuserdata(th, park::err().0);
            ffi::lua_pushlstring(th, msg.as_ptr() as *const _, msg.len());
            2
        }
    }
}

/// Resumes the G whose thread is `th` with `wake` (the caller has
/// published `th` in its P's running slot), and reads what it
/// yielded or returned (see the table in [`crate::sched::m`]). `sel_sends`
/// are the values of the G's parked select: all but the winning case's
/// are released.
///
/// # Safety
/// `th` is a live, suspended thread of an actor owned by the calling M.
pub unsafe fn resume(
    th: LuaThread,
    nstart: c_int,
    wake: Option<Wake>,
    sel_sends: Option<Box<SelectSends>>,
) -> Resumed {
    let th = th.0;
    if ffi::lua_checkstack(th, 8) == 0 {
        return Resumed::Panicked("stack overflow (resuming goroutine)".into(), String::new());
    }
    let won = match &wake {
        Some(Wake::Select { case, .. }) => *case,
        _ => 0,
    };
    for (case, m) in sel_sends.into_iter().flat_map(|b| *b) {
        if case != won {
            release_msg(th, m);
        }
    }
    // A new G's function arguments are on its stack already.
    let nargs = if nstart > 0 {
        nstart
    } else {
        push_wake(th, wake)
    };
    let mut nres: c_int = 0;
    let status = ffi::lua_resume(th, ptr::null_mut(), nargs, &mut nres);
    preempt::disarm(th);
    match status {
        ffi::LUA_OK | ffi::LUA_YIELD => {
            let base = ffi::lua_gettop(th) - nres + 1;
            let sched = nres >= 2
                && ffi::lua_type(th, base) == ffi::LUA_TLIGHTUSERDATA
                && ffi::lua_touserdata(th, base) == park::sched().0;
            let r = if !sched && status == ffi::LUA_YIELD {
                // A yield without SCHED at the top of a G is the hook's.
                preempt::take_preempted();
                Resumed::Preempted
            } else if !sched {
                Resumed::Exited
            } else {
                match ffi::lua_tointegerx(th, base + 1, ptr::null_mut()) {
                    park::KIND_GOSCHED => Resumed::Gosched,
                    park::KIND_PREEMPT => Resumed::Preempted,
                    park::KIND_EXIT => Resumed::Exited,
                    park::KIND_PANIC => {
                        Resumed::Panicked(string_at(th, base + 2), string_at(th, base + 3))
                    }
                    k => match WaitReason::from_code(k - park::KIND_PARK) {
                        Some(r) if k >= park::KIND_PARK => Resumed::Parked(r),
                        _ => Resumed::Panicked("lugo: bad scheduler request".into(), String::new()),
                    },
                }
            };
            ffi::lua_settop(th, base - 1);
            r
        }
        _ => {
            // Raised outside the goroutine's xpcall (out of memory in the
            // message handler): no traceback to be had.
            let msg = if ffi::lua_type(th, -1) == ffi::LUA_TSTRING {
                string_at(th, -1)
            } else {
                "(error object is not a string)".into()
            };
            Resumed::Panicked(msg, String::new())
        }
    }
}

/// The Lua traceback of a suspended or running-elsewhere thread.
///
/// # Safety
/// `th` is a live thread of an actor owned by the calling M, not running.
pub unsafe fn traceback(th: LuaThread) -> String {
    let th = th.0;
    if ffi::lua_checkstack(th, 4) == 0 {
        return String::new();
    }
    ffi::luaL_traceback(th, th, ptr::null(), 0);
    let s = string_at(th, -1);
    ffi::lua_pop(th, 1);
    s
}

/// Releases the registry reference that kept a G's thread alive.
///
/// # Safety
/// `th` is a thread of an actor owned by the calling M; `r` came from
/// `luaL_ref(.., LUA_REGISTRYINDEX)` and is released once.
pub unsafe fn unref_thread(th: LuaThread, r: c_int) {
    ffi::luaL_unref(th.0, ffi::LUA_REGISTRYINDEX, r);
}
