//! `chan`: channels and `chan.select` (Rust half), as C functions (see
//! [`crate::cfn`]). A channel is a [`crate::cfn::Boxed`] `Arc<Chan>`;
//! values travel as [`Msg`]s (see `lugo_vm::ffi`). The channel methods are
//! these C functions themselves: `ch:recv()` parks by yielding from C.

use std::ffi::{c_int, CStr};
use std::sync::Arc;

use lugo_vm::chan::{RecvResult, SendResult, SEND_ON_CLOSED};
use lugo_vm::ffi::{mark_goroutine, push_msg, release_msg, to_msg, LuaThread};
use lugo_vm::mem::NoMemory;
use lugo_vm::select::{self, Case, SelectResult};
use lugo_vm::{Chan, Msg, WaitReason};
use mlua::{ffi, Lua, Value};

use crate::cfn::{
    self, actor, check, expected, fill, guard, me, new_box, push, raise, type_name, CFn, Closure,
    Raw, Ret, CANNOT_PARK, MT_CHAN,
};

impl Raw for Chan {
    const NAME: &'static CStr = c"lugo.chan";
    const SHARED: bool = true;
    const SHORT: &'static str = "chan";
    const MAGIC: u64 = 0x6c75_676f_6368_616e;
    const MT_UPVALUE: c_int = MT_CHAN;

    /// A channel of one actor whose last handle is collected: its buffered
    /// values can never be received; release their slots. A shared channel
    /// lives on in other actors (and holds copies, not slots): keep it.
    unsafe fn on_collect(&self, l: *mut ffi::lua_State) {
        if self.is_shared() {
            return;
        }
        for m in self.drain_buffer() {
            // SAFETY: `l` is the state collecting this channel's last
            // handle (the contract of `on_collect`): the values an unshared
            // channel buffers are slots of that state's values table, and
            // `release_msg` frees each (inert).
            unsafe { release_msg(l, m) };
        }
    }
}

/// The message for the value at `idx` sent on `ch`: a copy on a channel
/// that several actors hold (its receiver may live in another state), a
/// reference into this actor's values table otherwise.
#[inline]
unsafe fn msg_for(
    l: *mut ffi::lua_State,
    cl: Closure,
    ch: &Chan,
    idx: c_int,
) -> Result<Msg, String> {
    // SAFETY: `l` is the running thread of `cl`, a closure made by
    // `Registry`, with the value at `idx` and four free stack slots (the
    // callers are C function bodies of this module, which start with
    // `LUA_MINSTACK`): what `to_portable` and `to_msg` require.
    unsafe {
        let scalar = matches!(
            ffi::lua_type(l, idx),
            ffi::LUA_TNIL | ffi::LUA_TNONE | ffi::LUA_TBOOLEAN | ffi::LUA_TNUMBER
        );
        if ch.is_shared() && !scalar {
            crate::copy::to_portable(cl, l, idx, "msg").map(|p| Msg::Copied(Arc::new(p)))
        } else {
            // A scalar crosses as itself (nothing to copy, nothing stored).
            Ok(to_msg(l, idx))
        }
    }
}

unsafe fn check_chan<'a>(l: *mut ffi::lua_State, idx: c_int) -> Option<&'a Chan> {
    // SAFETY: the caller's contract is `check`'s: `l` is running a closure
    // made by `Registry`, and the borrow lives no longer than the value at
    // `idx`.
    unsafe { check::<Chan>(l, idx) }
}

unsafe fn expected_chan(l: *mut ffi::lua_State, fname: &str, idx: c_int) -> Ret {
    // SAFETY: `l` is a valid state (the caller's contract), what `expected`
    // requires.
    unsafe { expected(l, fname, "channel", idx) }
}

/// `chan([cap])`, the `__call` of the `chan` module: `cap` is argument 2.
unsafe extern "C-unwind" fn chan_new(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The box is allocated
    // (that may raise) while nothing is owned, and filled once while it is on
    // top of the stack; converting a number for the message (`to_display`,
    // which may raise) happens while nothing is owned either.
    unsafe {
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
                    let n = n as usize;
                    // The box first (ffi rule 2), then the charged channel.
                    let b = new_box::<Chan>(l);
                    match actor(l).account().charge(Chan::bytes(n)) {
                        Ok(charge) => {
                            fill(b, Arc::new(Chan::charged(n, charge)));
                            Ret::N(1)
                        }
                        Err(NoMemory) => raise("chan: not enough memory"),
                    }
                }
                Some(_) => raise("chan: capacity too large"),
                None => {
                    let what = match ffi::lua_type(l, 2) {
                        ffi::LUA_TNUMBER => cfn::to_display(l, 2),
                        _ => type_name(l, 2),
                    };
                    raise(format!(
                        "chan: capacity must be a non-negative integer, got {what}"
                    ))
                }
            }
        })
    }
}

/// Registry keys of the prelude's variants of `send` and `recv` given a
/// context (`lugo_stdlib::open` keeps them).
pub(crate) const SEND_CTX: &CStr = c"lugo.send_ctx";
/// See [`SEND_CTX`].
pub(crate) const RECV_CTX: &CStr = c"lugo.recv_ctx";

unsafe extern "C-unwind" fn chan_send(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The channel borrowed
    // from argument 1 stays valid: nothing here removes argument 1. Storing
    // the value (`msg_for`: a slot, which may raise out of memory) happens
    // while only borrows are alive; the message then belongs to the channel,
    // or is released (`release_msg`, inert). Given a userdata (a context,
    // else `send_ctx` raises) at 3 with a channel at 1, the call goes to the
    // prelude's `send_ctx` (`delegate`, as the last act, nothing owned).
    // Another extra argument is ignored, as ever: `ch:send(other:recv())`
    // passes `ok` along.
    unsafe {
        if ffi::lua_type(l, 3) == ffi::LUA_TUSERDATA && Closure::of(l).check::<Chan>(l, 1).is_some()
        {
            return cfn::delegate(l, SEND_CTX, 3);
        }
        guard(l, || {
            let cl = Closure::of(l);
            let Some(ch) = cl.check::<Chan>(l, 1) else {
                return expected_chan(l, "ch:send", 1);
            };
            let a = cl.actor();
            let m = match msg_for(l, cl, ch, 2) {
                Ok(m) => m,
                Err(e) => return raise(format!("ch:send: {e}")),
            };
            match ch.send(m, || me(l, a)) {
                SendResult::Sent => Ret::N(0),
                SendResult::Park => Ret::Park(WaitReason::ChanSend),
                SendResult::Closed(m) => {
                    release_msg(l, m);
                    raise(SEND_ON_CLOSED)
                }
                SendResult::WouldBlock(m) => {
                    release_msg(l, m);
                    raise(CANNOT_PARK)
                }
            }
        })
    }
}

unsafe extern "C-unwind" fn chan_recv(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The channel is
    // borrowed from argument 1, on the stack throughout. The received value
    // is pushed by inert calls or built under `protect` (`push_msg` does not
    // raise), with the three free slots it needs (a C function starts with
    // `LUA_MINSTACK`). Given a userdata (a context, else `recv_ctx`
    // raises) at 2 with a channel at 1, the call goes to the prelude's
    // `recv_ctx` (`delegate`, as the last act, nothing owned); another
    // extra argument is ignored.
    unsafe {
        if ffi::lua_type(l, 2) == ffi::LUA_TUSERDATA && Closure::of(l).check::<Chan>(l, 1).is_some()
        {
            return cfn::delegate(l, RECV_CTX, 2);
        }
        guard(l, || {
            let cl = Closure::of(l);
            let Some(ch) = cl.check::<Chan>(l, 1) else {
                return expected_chan(l, "ch:recv", 1);
            };
            let a = cl.actor();
            match ch.recv(|| me(l, a)) {
                RecvResult::Got(m, ok) => {
                    // A copied value is built under `protect`: out of memory
                    // raises here, and the value (taken) is dropped.
                    if push_msg(l, m).is_err() {
                        return Ret::Rethrow;
                    }
                    ffi::lua_pushboolean(l, ok as c_int);
                    Ret::N(2)
                }
                RecvResult::Park => Ret::Park(WaitReason::ChanReceive),
                RecvResult::WouldBlock => raise(CANNOT_PARK),
            }
        })
    }
}

unsafe extern "C-unwind" fn chan_close(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The channel is
    // borrowed from argument 1, on the stack throughout; the only Lua calls
    // are `expected`'s inert ones.
    unsafe {
        guard(l, || {
            let Some(ch) = check_chan(l, 1) else {
                return expected_chan(l, "ch:close", 1);
            };
            match ch.close() {
                Ok(()) => Ret::N(0),
                Err(e) => raise(e),
            }
        })
    }
}

unsafe extern "C-unwind" fn chan_len(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The channel is
    // borrowed from argument 1, on the stack throughout; pushing an integer
    // is inert.
    unsafe {
        guard(l, || match check_chan(l, 1) {
            Some(ch) => {
                ffi::lua_pushinteger(l, ch.len() as ffi::lua_Integer);
                Ret::N(1)
            }
            None => expected_chan(l, "ch:len", 1),
        })
    }
}

unsafe extern "C-unwind" fn chan_cap(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The channel is
    // borrowed from argument 1, on the stack throughout; pushing an integer
    // is inert.
    unsafe {
        guard(l, || match check_chan(l, 1) {
            Some(ch) => {
                ffi::lua_pushinteger(l, ch.cap() as ffi::lua_Integer);
                Ret::N(1)
            }
            None => expected_chan(l, "ch:cap", 1),
        })
    }
}

/// `chan.select(case, ...)`: parses the cases and runs the select. It is
/// called by the Lua half (which runs the handler functions), so its errors
/// carry the position of that function's caller.
unsafe extern "C-unwind" fn chan_select(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with the cases
    // as its arguments; `guard` is its last act. That is `select_body`'s
    // contract.
    unsafe {
        guard(l, || match select_body(l) {
            Ret::Raise(_, msg) => Ret::Raise(2, msg),
            r => r,
        })
    }
}

/// The parsed arguments of a select.
#[derive(Default)]
struct Cases {
    /// The cases that may fire, by argument position (a case on a nil
    /// channel never fires, Go's rule: it is left out).
    cases: Vec<(usize, Case)>,
    /// The send cases' values by argument position (see
    /// `lugo_vm::g::G::sel_sends`).
    sends: Vec<(usize, Msg)>,
    /// Argument position of the default case.
    default: Option<usize>,
}

/// Why a select's arguments are wrong.
enum BadCase {
    NotTable(c_int, &'static CStr),
    BadKind(c_int),
    TwoDefaults,
    NotChannel(c_int, &'static CStr),
    Uncopyable(c_int, String),
}

/// Reads the cases into `out`. Storing a send value may raise (out of
/// memory), so this runs inside `ffi::protect` while `out` belongs to the
/// caller: it owns nothing, and what it made is in `out` either way.
unsafe fn parse_cases(l: *mut ffi::lua_State, cl: Closure, out: &mut Cases) -> Result<(), BadCase> {
    // Reads are raw (no metamethod runs); a case's kind is read from its
    // string before it is popped; type names are static strings.
    // SAFETY: `l` runs `select_body`'s protected call (a C function: at
    // least `LUA_MINSTACK` slots; this uses four), with the cases at `1..=n`;
    // `cl` is `chan.select`'s closure of this state. The one raising step,
    // `to_msg`, runs while this frame owns nothing: what it makes is in
    // `out`, the caller's, which a raise leaves as it is.
    unsafe {
        let n = ffi::lua_gettop(l);
        for i in 1..=n {
            if ffi::lua_type(l, i) != ffi::LUA_TTABLE {
                return Err(BadCase::NotTable(
                    i,
                    CStr::from_ptr(ffi::luaL_typename(l, i)),
                ));
            }
            ffi::lua_rawgeti(l, i, 1);
            let kind: &[u8] = if ffi::lua_type(l, -1) == ffi::LUA_TSTRING {
                let mut len = 0usize;
                let k = ffi::lua_tolstring(l, -1, &mut len);
                std::slice::from_raw_parts(k as *const u8, len)
            } else {
                b""
            };
            let kind = match kind {
                b"recv" => 1,
                b"send" => 2,
                b"default" => 3,
                _ => 0,
            };
            ffi::lua_pop(l, 1);
            match kind {
                0 => return Err(BadCase::BadKind(i)),
                3 if out.default.is_some() => return Err(BadCase::TwoDefaults),
                3 => {
                    out.default = Some(i as usize);
                    continue;
                }
                _ => {}
            }
            ffi::lua_rawgeti(l, i, 2);
            if ffi::lua_type(l, -1) == ffi::LUA_TNIL {
                // A nil channel: a case that never fires (its value, if
                // a send's, is not even read).
                ffi::lua_pop(l, 1);
                continue;
            }
            let Some(shared) = cl.check::<Chan>(l, -1).map(|ch| ch.is_shared()) else {
                return Err(BadCase::NotChannel(
                    i,
                    CStr::from_ptr(ffi::luaL_typename(l, -1)),
                ));
            };
            let at = i as usize;
            if kind == 1 {
                out.cases
                    .push((at, Case::Recv(cl.arc::<Chan>(l, -1).expect("checked"))));
            } else {
                ffi::lua_rawgeti(l, i, 3);
                let m = if shared {
                    match crate::copy::to_portable(cl, l, -1, "msg") {
                        Ok(p) => Msg::Copied(Arc::new(p)),
                        Err(e) => return Err(BadCase::Uncopyable(i, e)),
                    }
                } else {
                    // May raise: no value of this frame is alive.
                    to_msg(l, -1)
                };
                ffi::lua_pop(l, 1);
                let ch = cl.arc::<Chan>(l, -1).expect("checked");
                out.sends.push((at, m.clone()));
                out.cases.push((at, Case::Send(ch, m)));
            }
            ffi::lua_pop(l, 1);
        }
        Ok(())
    }
}

unsafe fn select_body(l: *mut ffi::lua_State) -> Ret {
    // `protect` runs `parse_cases` (its closure borrows `c` and `bad`): a
    // raise comes back as `Err`, and what was made is in `c`, released here.
    // SAFETY: `l` runs `chan.select`'s closure with the cases as arguments
    // (the contract); the stack gets room for their copies and `protect`'s
    // two slots. Every later Lua call is inert (`release_msg`, pushes of
    // integers and booleans) or protected (`push_msg` copies under
    // `protect`), so nothing skips the drop of the cases.
    unsafe {
        let n = ffi::lua_gettop(l);
        if ffi::lua_checkstack(l, n + 4) == 0 {
            return raise("chan.select: too many cases");
        }
        let mut c = Cases::default();
        let mut bad = None;
        // The cases go into the protected call as its arguments.
        for i in 1..=n {
            ffi::lua_pushvalue(l, i);
        }
        let cl = Closure::of(l);
        let parsed = {
            let (c, bad) = (&mut c, &mut bad);
            lugo_vm::ffi::protect(l, n, |l| {
                if let Err(e) = parse_cases(l, cl, c) {
                    *bad = Some(e);
                }
                0
            })
        };
        // Releases every send value but the one the select delivered.
        let release_except = |l, sends: &[(usize, Msg)], won: usize| {
            for (case, m) in sends {
                if *case != won {
                    release_msg(l, m.clone());
                }
            }
        };
        if parsed.is_err() {
            release_except(l, &c.sends, 0);
            return Ret::Rethrow;
        }
        if let Some(bad) = bad {
            release_except(l, &c.sends, 0);
            return raise(match bad {
                BadCase::NotTable(i, t) => format!(
                    "chan.select: case {i} must be a table, got {}",
                    t.to_string_lossy()
                ),
                BadCase::BadKind(i) => {
                    format!(
                        "chan.select: case {i} must start with \"recv\", \"send\" or \"default\""
                    )
                }
                BadCase::TwoDefaults => "chan.select: more than one default case".into(),
                BadCase::NotChannel(i, t) => format!(
                    "chan.select: case {i}: channel expected, got {}",
                    t.to_string_lossy()
                ),
                BadCase::Uncopyable(i, e) => format!("chan.select: case {i}: {e}"),
            });
        }
        let Cases {
            cases,
            sends,
            default,
        } = c;
        // No case can fire (none given, or all on nil channels): parked
        // for good unless there is a default, as Go's `select {}`.
        let reason = if cases.is_empty() {
            WaitReason::SelectNoCases
        } else {
            WaitReason::Select
        };
        let a = actor(l);
        match select::select(cases, default.is_none(), || me(l, a)) {
            SelectResult::Ready { case, recv } => {
                release_except(l, &sends, case);
                ffi::lua_pushinteger(l, case as ffi::lua_Integer);
                match recv {
                    None => Ret::N(1),
                    Some((m, ok)) => {
                        if push_msg(l, m).is_err() {
                            return Ret::Rethrow;
                        }
                        ffi::lua_pushboolean(l, ok as c_int);
                        Ret::N(3)
                    }
                }
            }
            SelectResult::SendClosed(_) => {
                release_except(l, &sends, 0);
                raise(SEND_ON_CLOSED)
            }
            SelectResult::WouldBlock => {
                release_except(l, &sends, 0);
                match default {
                    Some(d) => {
                        ffi::lua_pushinteger(l, d as ffi::lua_Integer);
                        Ret::N(1)
                    }
                    None => raise(CANNOT_PARK),
                }
            }
            // The vm's case numbers are the argument positions.
            SelectResult::Park => {
                a.set_select_sends(sends);
                Ret::Park(reason)
            }
        }
    }
}

/// `spawn(thread, f, ...)`: makes a G of a new thread (made by `go` in
/// prelude.lua): moves `f` and its arguments onto the thread's stack,
/// where its first resume finds them.
unsafe extern "C-unwind" fn spawn(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. `th` is a new thread
    // (checked) that `go` made in this state (the prelude is the only
    // caller), so a live thread of the running actor, kept alive by argument
    // 1 until `luaL_ref` moves it into the registry (that may raise out of
    // memory, while nothing is owned); its stack gets room for the creator
    // (`push_creator`: `l` has room for the function it reads) and the
    // arguments before they are moved.
    unsafe {
        guard(l, || {
            let th = ffi::lua_tothread(l, 1);
            if th.is_null() || ffi::lua_status(th) != ffi::LUA_OK || ffi::lua_gettop(th) != 1 {
                return raise("go: internal error: not a new thread");
            }
            let nargs = ffi::lua_gettop(l) - 1;
            if ffi::lua_checkstack(th, nargs + CREATOR_SLOTS) == 0 || ffi::lua_checkstack(l, 1) == 0
            {
                return raise("go: too many arguments");
            }
            push_creator(l, th, actor(l).current_id());
            ffi::lua_xmove(l, th, nargs);
            let r = ffi::luaL_ref(l, ffi::LUA_REGISTRYINDEX);
            mark_goroutine(LuaThread(th));
            match actor(l).spawn(LuaThread(th), r, nargs + CREATOR_SLOTS) {
                Ok(id) => {
                    ffi::lua_pushinteger(l, id as ffi::lua_Integer);
                    Ret::N(1)
                }
                Err(NoMemory) => {
                    // Its record was refused: the thread is let go.
                    ffi::luaL_unref(l, ffi::LUA_REGISTRYINDEX, r);
                    raise("go: not enough memory")
                }
            }
        })
    }
}

/// Stack slots below a goroutine's function that say who created it
/// (`lugo_vm::ffi::creator` reads them back for dumps): the creating
/// goroutine's id, the function that called `go` and the line it was at.
pub(crate) const CREATOR_SLOTS: c_int = lugo_vm::ffi::CREATOR_SLOTS;

/// Pushes the creator slots onto the new goroutine thread `th`: `parent`
/// (0: none), then the function two levels up `l`'s stack (the caller of
/// the prelude's `go`) and its current line, or nil and 0.
///
/// # Safety
/// `l` is the running thread (of `spawn`, called by the prelude), with a
/// free slot; `th` a new thread of the same state with `CREATOR_SLOTS`
/// free slots. Every call here is inert.
unsafe fn push_creator(l: *mut ffi::lua_State, th: *mut ffi::lua_State, parent: u64) {
    // SAFETY: the contract; `ar` is ours, filled by `lua_getstack`, and
    // `lua_getinfo` with "fl" pushes one function onto `l` (room checked),
    // which `lua_xmove` moves to `th` (same state).
    unsafe {
        ffi::lua_pushinteger(th, parent as ffi::lua_Integer);
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(l, 2, &mut ar) != 0
            && ffi::lua_getinfo(l, c"fl".as_ptr(), &mut ar) != 0
        {
            ffi::lua_xmove(l, th, 1);
            ffi::lua_pushinteger(th, ar.currentline as ffi::lua_Integer);
        } else {
            ffi::lua_pushnil(th);
            ffi::lua_pushinteger(th, 0);
        }
    }
}

/// `ischan(v)`: whether `v` is a channel.
unsafe extern "C-unwind" fn ischan(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with its argument at 1, as `check_chan` requires; the
    // borrow ends at once, and pushing a boolean is inert.
    unsafe {
        ffi::lua_pushboolean(l, check_chan(l, 1).is_some() as c_int);
        1
    }
}

/// The channel methods.
pub(crate) const METHODS: [(&CStr, CFn); 5] = [
    (c"send", chan_send),
    (c"recv", chan_recv),
    (c"close", chan_close),
    (c"len", chan_len),
    (c"cap", chan_cap),
];

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 4] = [
    (c"ischan", ischan),
    (c"chan_new", chan_new),
    (c"select", chan_select),
    (c"spawn", spawn),
];

/// The Lua value of channel `ch` in `lua` (an ordinary lugo channel), for
/// mlua callbacks (timers) and the host.
pub fn chan_value(lua: &Lua, ch: Arc<Chan>) -> mlua::Result<Value> {
    // The closure borrows `ch`: a raise inside `exec_raw` skips nothing
    // that needs dropping (ffi rule 2).
    let ch = &ch;
    // SAFETY: pushes one userdata on the state's stack, returned as the
    // result; the channel metatable exists (`lib::open` registers it first).
    unsafe { lua.exec_raw((), |l| push(l, || ch.clone())) }
}
