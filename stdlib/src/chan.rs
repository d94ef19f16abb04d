//! `chan`: channels and `chan.select` (Rust half), on the raw C API.
//!
//! Channel operations are the hottest calls a lugo program makes, so they
//! are plain C functions (`lua_CFunction`) rather than mlua callbacks: no
//! lock, no reference bookkeeping, no allocation on the fast path. A
//! channel is a full userdata holding an `Arc<Chan>` ([`ChanBox`]) with the
//! metatable `lugo.chan`. Values travel as [`Msg`]s (see `lugo_vm::ffi`).
//!
//! The channel methods are these C functions themselves, with no Lua
//! wrapper: a function that must park yields `SCHED, kind` to the M with
//! `lua_yieldk`, and its continuation ([`after_park`]) returns the values
//! the M resumes it with. Errors are raised as `luaL_error` does, with the
//! caller's position. Both `longjmp` out of the C function, so they happen
//! in [`guard`], after every Rust value of the body has been dropped.

use std::ffi::{c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Arc;

use lugo_vm::chan::{RecvResult, SendResult, SEND_ON_CLOSED};
use lugo_vm::ffi::{is_goroutine, mark_goroutine, push_msg, release_msg, to_msg, LuaThread};
use lugo_vm::park;
use lugo_vm::select::{self, Case, SelectResult};
use lugo_vm::{Actor, Chan, Msg, WaitReason};
use mlua::{ffi, Lua, Table, Value};

/// Registry name of the channel metatable.
const CHAN_MT: &CStr = c"lugo.chan";
/// Marks a [`ChanBox`], a second check after the metatable's.
const MAGIC: u64 = 0x6c75_676f_6368_616e;

/// The memory block of a channel userdata.
#[repr(C)]
struct ChanBox {
    magic: u64,
    /// From `Arc::into_raw`; null once collected.
    chan: *const Chan,
}

type CFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

/// The channel box at `idx`, if it is one. The metatable is compared with
/// the one in upvalue 2 (`luaL_testudata` would look its name up in the
/// registry on every call).
///
/// # Safety
/// `l` is a valid state running one of this module's C closures.
unsafe fn chan_box(l: *mut ffi::lua_State, idx: c_int) -> *mut ChanBox {
    if ffi::lua_type(l, idx) != ffi::LUA_TUSERDATA || ffi::lua_getmetatable(l, idx) == 0 {
        return ptr::null_mut();
    }
    let mt = ffi::lua_topointer(l, -1);
    ffi::lua_pop(l, 1);
    if !std::ptr::eq(mt, ffi::lua_touserdata(l, ffi::lua_upvalueindex(2))) {
        return ptr::null_mut();
    }
    let p = ffi::lua_touserdata(l, idx) as *mut ChanBox;
    if (*p).magic != MAGIC {
        return ptr::null_mut();
    }
    p
}

/// The channel at `idx`, borrowed for the duration of the call.
///
/// # Safety
/// As [`chan_box`]; the returned reference must not outlive the value at
/// `idx` staying on the stack.
unsafe fn check_chan<'a>(l: *mut ffi::lua_State, idx: c_int) -> Option<&'a Chan> {
    let p = chan_box(l, idx);
    if p.is_null() || (*p).chan.is_null() {
        return None;
    }
    Some(&*(*p).chan)
}

/// A new reference to the channel at `idx`.
unsafe fn chan_arc(l: *mut ffi::lua_State, idx: c_int) -> Option<Arc<Chan>> {
    let ch = check_chan(l, idx)?;
    let raw = ch as *const Chan;
    Arc::increment_strong_count(raw);
    Some(Arc::from_raw(raw))
}

/// Pushes a new userdata for `ch`.
unsafe fn push_chan(l: *mut ffi::lua_State, ch: Arc<Chan>) {
    let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<ChanBox>(), 0) as *mut ChanBox;
    p.write(ChanBox {
        magic: MAGIC,
        chan: Arc::into_raw(ch),
    });
    ffi::luaL_setmetatable(l, CHAN_MT.as_ptr());
}

unsafe fn push_str(l: *mut ffi::lua_State, s: &str) {
    ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
}

/// How a C function ends.
enum Ret {
    /// Return this many results from the top of the stack.
    N(c_int),
    /// Raise this message with the position of the function at this stack
    /// level (1: the caller), as `luaL_error` does.
    Raise(c_int, String),
    /// Park the goroutine: yield `SCHED, kind` to the M; the values it is
    /// resumed with become the function's results.
    Park(WaitReason),
}

fn raise(_l: *mut ffi::lua_State, msg: &str) -> Ret {
    Ret::Raise(1, msg.to_string())
}

fn park(_l: *mut ffi::lua_State, reason: WaitReason) -> Ret {
    Ret::Park(reason)
}

/// Continuation of a parked C function: its results are the values the M
/// resumed it with, `ERR, message` meaning "raise this".
unsafe extern "C-unwind" fn after_park(
    l: *mut ffi::lua_State,
    _status: c_int,
    base: ffi::lua_KContext,
) -> c_int {
    let base = base as c_int;
    if ffi::lua_gettop(l) > base
        && ffi::lua_type(l, base + 1) == ffi::LUA_TLIGHTUSERDATA
        && ffi::lua_touserdata(l, base + 1) == park::err().0
    {
        ffi::luaL_where(l, 1);
        ffi::lua_pushvalue(l, base + 2);
        ffi::lua_concat(l, 2);
        ffi::lua_error(l)
    }
    ffi::lua_gettop(l) - base
}

unsafe fn type_name(l: *mut ffi::lua_State, idx: c_int) -> String {
    CStr::from_ptr(ffi::luaL_typename(l, idx))
        .to_string_lossy()
        .into_owned()
}

unsafe fn expected_chan(l: *mut ffi::lua_State, fname: &str, idx: c_int) -> Ret {
    let t = type_name(l, idx);
    raise(l, &format!("{fname}: channel expected, got {t}"))
}

/// Lua's message for a yield where it cannot happen.
pub(crate) const CANNOT_PARK: &str = "attempt to yield across a C-call boundary";

/// The running G, if it can park here: inside a C call (a `string.gsub`
/// callback, a `table.sort` comparator) Lua cannot yield, so the operation
/// must fail instead of queueing a waiter that would never be resumed.
unsafe fn me(l: *mut ffi::lua_State, a: &Arc<Actor>) -> Option<lugo_vm::GRef> {
    (ffi::lua_isyieldable(l) != 0).then(|| a.current())
}

/// The actor in upvalue 1.
unsafe fn actor<'a>(l: *mut ffi::lua_State) -> &'a Arc<Actor> {
    &*(ffi::lua_touserdata(l, ffi::lua_upvalueindex(1)) as *const Arc<Actor>)
}

/// Runs a C function body and carries out its [`Ret`]. A Rust panic (a
/// lugo bug) becomes a Lua error. Raising and yielding `longjmp` out of
/// this function, so they happen here, after the body's frames are gone
/// and with nothing left to drop.
unsafe fn guard(l: *mut ffi::lua_State, f: impl FnOnce() -> Ret) -> c_int {
    let ret = catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| {
        Ret::Raise(
            1,
            "lugo: internal error (a Rust panic) in a channel operation".into(),
        )
    });
    match ret {
        Ret::N(n) => n,
        Ret::Raise(level, msg) => {
            ffi::luaL_where(l, level);
            push_str(l, &msg);
            drop(msg);
            ffi::lua_concat(l, 2);
            ffi::lua_error(l)
        }
        Ret::Park(reason) => {
            let base = ffi::lua_gettop(l);
            ffi::lua_pushlightuserdata(l, park::sched().0);
            ffi::lua_pushinteger(l, park::KIND_PARK + reason.code());
            ffi::lua_yieldk(l, 2, base as ffi::lua_KContext, Some(after_park))
        }
    }
}

/// `chan([cap])`, the `__call` of the `chan` module: `cap` is argument 2.
unsafe extern "C-unwind" fn chan_new(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let cap = match ffi::lua_type(l, 2) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => Some(0),
            ffi::LUA_TNUMBER => {
                let mut isint = 0;
                let n = ffi::lua_tointegerx(l, 2, &mut isint);
                (isint != 0 && n >= 0).then_some(n)
            }
            _ => None,
        };
        match cap {
            Some(n) if n <= 1 << 32 => {
                push_chan(l, Arc::new(Chan::new(n as usize)));
                Ret::N(1)
            }
            Some(_) => raise(l, "chan: capacity too large"),
            None => {
                let what = match ffi::lua_type(l, 2) {
                    ffi::LUA_TNUMBER => "a negative or fractional number".to_string(),
                    _ => type_name(l, 2),
                };
                raise(
                    l,
                    &format!("chan: capacity must be a non-negative integer, got {what}"),
                )
            }
        }
    })
}

unsafe extern "C-unwind" fn chan_send(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let Some(ch) = check_chan(l, 1) else {
            return expected_chan(l, "ch:send", 1);
        };
        let a = actor(l);
        match ch.send(to_msg(l, 2), || me(l, a)) {
            SendResult::Sent => Ret::N(0),
            SendResult::Park => park(l, WaitReason::ChanSend),
            SendResult::Closed(m) => {
                release_msg(l, m);
                raise(l, SEND_ON_CLOSED)
            }
            SendResult::WouldBlock(m) => {
                release_msg(l, m);
                raise(l, CANNOT_PARK)
            }
        }
    })
}

unsafe extern "C-unwind" fn chan_recv(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let Some(ch) = check_chan(l, 1) else {
            return expected_chan(l, "ch:recv", 1);
        };
        let a = actor(l);
        match ch.recv(|| me(l, a)) {
            RecvResult::Got(m, ok) => {
                push_msg(l, m);
                ffi::lua_pushboolean(l, ok as c_int);
                Ret::N(2)
            }
            RecvResult::Park => park(l, WaitReason::ChanReceive),
            RecvResult::WouldBlock => raise(l, CANNOT_PARK),
        }
    })
}

unsafe extern "C-unwind" fn chan_close(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let Some(ch) = check_chan(l, 1) else {
            return expected_chan(l, "ch:close", 1);
        };
        match ch.close() {
            Ok(()) => Ret::N(0),
            Err(e) => raise(l, e),
        }
    })
}

unsafe extern "C-unwind" fn chan_len(l: *mut ffi::lua_State) -> c_int {
    guard(l, || match check_chan(l, 1) {
        Some(ch) => {
            ffi::lua_pushinteger(l, ch.len() as ffi::lua_Integer);
            Ret::N(1)
        }
        None => expected_chan(l, "ch:len", 1),
    })
}

unsafe extern "C-unwind" fn chan_cap(l: *mut ffi::lua_State) -> c_int {
    guard(l, || match check_chan(l, 1) {
        Some(ch) => {
            ffi::lua_pushinteger(l, ch.cap() as ffi::lua_Integer);
            Ret::N(1)
        }
        None => expected_chan(l, "ch:cap", 1),
    })
}

unsafe extern "C-unwind" fn chan_tostring(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let p = check_chan(l, 1).map_or(ptr::null(), |c| c as *const Chan);
        push_str(l, &format!("chan: {p:p}"));
        Ret::N(1)
    })
}

/// `__gc`: values still buffered can never be received; release them.
unsafe extern "C-unwind" fn chan_gc(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let p = chan_box(l, 1);
        if p.is_null() || (*p).chan.is_null() {
            return Ret::N(0);
        }
        let ch = Arc::from_raw((*p).chan);
        (*p).chan = ptr::null();
        for m in ch.drain_buffer() {
            release_msg(l, m);
        }
        Ret::N(0)
    })
}

/// `chan.select(case, ...)`: parses the cases and runs the select. It is
/// called by the Lua half (which runs the handler functions), so its errors
/// carry the position of that function's caller.
unsafe extern "C-unwind" fn chan_select(l: *mut ffi::lua_State) -> c_int {
    guard(l, || match select_body(l) {
        Ret::Raise(_, msg) => Ret::Raise(2, msg),
        r => r,
    })
}

unsafe fn select_body(l: *mut ffi::lua_State) -> Ret {
    {
        let n = ffi::lua_gettop(l);
        let mut cases = Vec::with_capacity(n as usize);
        let mut index = Vec::with_capacity(n as usize);
        let mut sends: Vec<(usize, Msg)> = Vec::new();
        let mut default = None;
        let fail = |l, sends: &[(usize, Msg)], msg: String| {
            for &(_, m) in sends {
                release_msg(l, m);
            }
            raise(l, &msg)
        };
        for i in 1..=n {
            if ffi::lua_type(l, i) != ffi::LUA_TTABLE {
                let t = type_name(l, i);
                return fail(
                    l,
                    &sends,
                    format!("chan.select: case {i} must be a table, got {t}"),
                );
            }
            ffi::lua_rawgeti(l, i, 1);
            let mut len = 0usize;
            let k = ffi::lua_tolstring(l, -1, &mut len);
            let kind: &[u8] = if k.is_null() || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
                b""
            } else {
                std::slice::from_raw_parts(k as *const u8, len)
            };
            let kind = match kind {
                b"recv" => 1,
                b"send" => 2,
                b"default" => 3,
                _ => 0,
            };
            ffi::lua_pop(l, 1);
            if kind == 3 {
                if default.is_some() {
                    return fail(l, &sends, "chan.select: more than one default case".into());
                }
                default = Some(i as usize);
                continue;
            }
            if kind == 0 {
                return fail(
                    l,
                    &sends,
                    format!(
                        "chan.select: case {i} must start with \"recv\", \"send\" or \"default\""
                    ),
                );
            }
            ffi::lua_rawgeti(l, i, 2);
            let ch = chan_arc(l, -1);
            let Some(ch) = ch else {
                let t = type_name(l, -1);
                return fail(
                    l,
                    &sends,
                    format!("chan.select: case {i}: channel expected, got {t}"),
                );
            };
            ffi::lua_pop(l, 1);
            if kind == 1 {
                cases.push(Case::Recv(ch));
            } else {
                ffi::lua_rawgeti(l, i, 3);
                let m = to_msg(l, -1);
                ffi::lua_pop(l, 1);
                sends.push((cases.len() + 1, m));
                cases.push(Case::Send(ch, m));
            }
            index.push(i as usize);
        }
        let reason = if cases.is_empty() {
            WaitReason::SelectNoCases
        } else {
            WaitReason::Select
        };
        let a = actor(l);
        // Releases every send value but the one the select delivered.
        let release_except = |l, won: usize| {
            for &(case, m) in &sends {
                if case != won {
                    release_msg(l, m);
                }
            }
        };
        match select::select(cases, default.is_none(), || me(l, a)) {
            SelectResult::Ready { case, recv } => {
                release_except(l, case);
                ffi::lua_pushinteger(l, index[case - 1] as ffi::lua_Integer);
                match recv {
                    None => Ret::N(1),
                    Some((m, ok)) => {
                        push_msg(l, m);
                        ffi::lua_pushboolean(l, ok as c_int);
                        Ret::N(3)
                    }
                }
            }
            SelectResult::SendClosed(_) => {
                release_except(l, 0);
                raise(l, SEND_ON_CLOSED)
            }
            SelectResult::WouldBlock => {
                release_except(l, 0);
                match default {
                    Some(d) => {
                        ffi::lua_pushinteger(l, d as ffi::lua_Integer);
                        Ret::N(1)
                    }
                    None => raise(l, CANNOT_PARK),
                }
            }
            // Only a select without default parks, and then every argument
            // is a case: the vm's case numbers are the argument positions.
            SelectResult::Park => {
                a.set_select_sends(sends);
                park(l, reason)
            }
        }
    }
}

/// `spawn(thread, f, ...)`: makes a G of a new thread (made by `go` in
/// prelude.lua): moves `f` and its arguments onto the thread's stack,
/// where its first resume finds them.
unsafe extern "C-unwind" fn spawn(l: *mut ffi::lua_State) -> c_int {
    guard(l, || {
        let th = ffi::lua_tothread(l, 1);
        if th.is_null() || ffi::lua_status(th) != ffi::LUA_OK || ffi::lua_gettop(th) != 1 {
            return raise(l, "go: internal error: not a new thread");
        }
        let nargs = ffi::lua_gettop(l) - 1;
        if ffi::lua_checkstack(th, nargs) == 0 {
            return raise(l, "go: too many arguments");
        }
        ffi::lua_xmove(l, th, nargs);
        let r = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
        mark_goroutine(LuaThread(th));
        let id = actor(l).spawn(LuaThread(th), r, nargs);
        ffi::lua_pushinteger(l, id as ffi::lua_Integer);
        Ret::N(1)
    })
}

/// `isg(co)`: whether `co` is a goroutine's own thread.
unsafe extern "C-unwind" fn isg(l: *mut ffi::lua_State) -> c_int {
    let th = ffi::lua_tothread(l, 1);
    ffi::lua_pushboolean(l, (!th.is_null() && is_goroutine(th)) as c_int);
    1
}

/// `ing()`: whether the running thread is a goroutine's own thread.
unsafe extern "C-unwind" fn ing(l: *mut ffi::lua_State) -> c_int {
    ffi::lua_pushboolean(l, is_goroutine(l) as c_int);
    1
}

const FUNCTIONS: [(&CStr, CFn); 10] = [
    (c"isg", isg),
    (c"ing", ing),
    (c"chan_new", chan_new),
    (c"send", chan_send),
    (c"recv", chan_recv),
    (c"close", chan_close),
    (c"len", chan_len),
    (c"cap", chan_cap),
    (c"select", chan_select),
    (c"spawn", spawn),
];

/// Installs the channel metatable and puts the C functions in `p`, with
/// `methods` as the channels' `__index`.
pub(crate) fn register(lua: &Lua, actor: &Arc<Actor>, p: &Table) -> mlua::Result<()> {
    // The functions find their actor through a light userdata upvalue
    // pointing at this box, which lives as long as the state does.
    let boxed: &'static Arc<Actor> = Box::leak(Box::new(actor.clone()));
    let methods = lua.create_table()?;
    p.set("chan_methods", &methods)?;
    // SAFETY: `exec_raw` runs the closure on the state's stack inside a
    // protected call, with `methods` pushed; the closure pushes the
    // metatable (left in the registry) and the table of functions it
    // returns, and balances everything else.
    let fns: Table = unsafe {
        lua.exec_raw(methods, |l| {
            ffi::luaL_newmetatable(l, CHAN_MT.as_ptr());
            let mt = ffi::lua_topointer(l, -1) as *mut c_void;
            // Every C function gets upvalue 1 = its actor, 2 = the metatable.
            let closure = |f: CFn| {
                ffi::lua_pushlightuserdata(l, boxed as *const Arc<Actor> as *mut c_void);
                ffi::lua_pushlightuserdata(l, mt);
                ffi::lua_pushcclosure(l, f, 2);
            };
            ffi::lua_pushvalue(l, -2);
            ffi::lua_setfield(l, -2, c"__index".as_ptr());
            ffi::lua_pushstring(l, c"chan".as_ptr());
            ffi::lua_setfield(l, -2, c"__name".as_ptr());
            closure(chan_gc);
            ffi::lua_setfield(l, -2, c"__gc".as_ptr());
            closure(chan_tostring);
            ffi::lua_setfield(l, -2, c"__tostring".as_ptr());
            ffi::lua_pop(l, 2);
            ffi::lua_createtable(l, 0, FUNCTIONS.len() as c_int);
            for (name, f) in FUNCTIONS {
                closure(f);
                ffi::lua_setfield(l, -2, name.as_ptr());
            }
        })?
    };
    for pair in fns.pairs::<Value, Value>() {
        let (k, v) = pair?;
        p.set(k, v)?;
    }
    Ok(())
}

/// A channel userdata for `ch`, for mlua callbacks (timers).
pub(crate) fn chan_value(lua: &Lua, ch: Arc<Chan>) -> mlua::Result<Value> {
    // SAFETY: pushes one userdata on the state's stack, returned as the result.
    unsafe { lua.exec_raw((), |l| push_chan(l, ch)) }
}
