//! `context`: Go's contexts in Lua's style (Rust half, C functions; the
//! blocking calls that take one are in the prelude).
//!
//! A [`Ctx`] is a node of a tree: `background()` is a root that is never
//! cancelled; `withcancel`, `withtimeout` and `withdeadline` make a child
//! that can be, with a function that cancels it; `withvalue` makes a child
//! that carries one key and value and is cancelled with its parent.
//!
//! Invariants:
//! 1. A context is cancelled once: its error (`context canceled`,
//!    `context deadline exceeded`) and cause are set under its lock, then,
//!    with no lock held, its done channel is closed (waking every goroutine
//!    of every actor that waits on it), its deadline timer stopped (a
//!    cancelled context holds no timer) and its children cancelled with the
//!    same error and cause.
//! 2. A cancellable child is listed (weakly) by its nearest cancellable
//!    ancestor until it is cancelled; one made under a cancelled ancestor
//!    is cancelled at once. A child with an earlier deadline than its
//!    parent's has a timer of its own; with a later one, it needs none.
//! 3. Contexts live in Rust and cross actors by reference (`copy.rs`):
//!    cancelling in one actor wakes waiters in all. A cause and a value are
//!    copies (`crate::copy`), rebuilt for whoever reads them; a key is a
//!    string, number or boolean, compared by value.

use std::ffi::{c_int, CStr};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use lugo_vm::clock::{now_ns, secs_to_ns};
use lugo_vm::ffi::{number_at, Number};
use lugo_vm::mem::Charge;
use lugo_vm::netpoll::IoWaiter;
use lugo_vm::portable::Portable;
use lugo_vm::timer::{Expiring, TimerAction, TimerId};
use lugo_vm::{Chan, Runtime};
use mlua::ffi;

use crate::cfn::{
    actor, check, expected, fill, guard, new_box, raise, type_name, CFn, Closure, Raw, Ret,
    MT_CONTEXT,
};
use crate::copy::{push_portable, to_portable};

/// `ctx:err()` once cancelled by `cancel`.
pub(crate) const CANCELED: &str = "context canceled";
/// `ctx:err()` once its deadline passed.
pub(crate) const DEADLINE_EXCEEDED: &str = "context deadline exceeded";

/// A key of `withvalue`, compared by value.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Str(Box<[u8]>),
    Int(i64),
    Num(f64),
    Bool(bool),
}

/// What a cancellable context knows of its end (invariant 1).
#[derive(Default)]
struct Ended {
    err: Option<&'static str>,
    cause: Option<Arc<Portable>>,
    /// Cancellable descendants to cancel with it (invariant 2).
    children: Vec<Weak<Ctx>>,
    timer: Option<TimerId>,
    /// Socket waits that end with it (`conn:setcontext`); completed ones
    /// are dropped as new ones come.
    io: Vec<IoWaiter>,
}

/// A context.
pub struct Ctx {
    rt: Runtime,
    parent: Option<Arc<Ctx>>,
    /// Closed when it is cancelled (never, for a background context); a
    /// value context's is its parent's.
    done: Arc<Chan>,
    /// Cancellable itself (else its end is its parent's).
    cancellable: bool,
    /// Monotonic ns (`time.now()`'s clock), its own or an ancestor's.
    deadline: Option<u64>,
    value: Option<(Key, Arc<Portable>)>,
    ended: Mutex<Ended>,
}

impl Raw for Ctx {
    const NAME: &'static CStr = c"lugo.context";
    const SHARED: bool = true;
    const SHORT: &'static str = "context";
    const MAGIC: u64 = 0x6c75_676f_6374_7874;
    const MT_UPVALUE: c_int = MT_CONTEXT;
}

/// The deadline timer of a context (it holds it weakly: a context
/// nobody holds is not kept by its timer).
struct DeadlineTimer(Weak<Ctx>);

impl Expiring for DeadlineTimer {
    fn expire(&self) {
        if let Some(c) = self.0.upgrade() {
            c.cancel(DEADLINE_EXCEEDED, None);
        }
    }

    fn waiting(&self) -> bool {
        // Conservative, as Go's checkdead with a timer pending: it may
        // wake a goroutine waiting on the done channel.
        self.0.upgrade().is_some_and(|c| c.err().is_none())
    }
}

impl Ctx {
    /// A root that is never cancelled.
    fn background(rt: Runtime) -> Ctx {
        Ctx {
            rt,
            parent: None,
            done: Arc::new(Chan::new_shared(0)),
            cancellable: false,
            deadline: None,
            value: None,
            ended: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ended> {
        self.ended.lock().expect("context poisoned")
    }

    /// The context whose end is this one's: itself, or the nearest
    /// cancellable ancestor (none: never ends).
    fn owner(self: &Arc<Ctx>) -> Option<&Arc<Ctx>> {
        let mut c = self;
        loop {
            if c.cancellable {
                return Some(c);
            }
            c = c.parent.as_ref()?;
        }
    }

    /// Its error, once it has ended.
    pub(crate) fn err(self: &Arc<Ctx>) -> Option<&'static str> {
        self.owner().and_then(|o| o.lock().err)
    }

    /// Its state in a word, for the REPL: `active`, `canceled`,
    /// `deadline exceeded`.
    pub(crate) fn state_word(self: &Arc<Ctx>) -> &'static str {
        match self.err() {
            None => "active",
            Some(e) => e.strip_prefix("context ").unwrap_or(e),
        }
    }

    fn cause(self: &Arc<Ctx>) -> Option<Arc<Portable>> {
        self.owner().and_then(|o| o.lock().cause.clone())
    }

    /// A cancellable child ending at `deadline` at the latest.
    fn child(self: &Arc<Ctx>, deadline: Option<u64>) -> Arc<Ctx> {
        let deadline = match (self.deadline, deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let c = Arc::new(Ctx {
            rt: self.rt.clone(),
            parent: Some(self.clone()),
            done: Arc::new(Chan::new_shared(0)),
            cancellable: true,
            deadline,
            value: None,
            ended: Mutex::default(),
        });
        // Listed by the ancestor that ends it (invariant 2).
        let gone = match self.owner() {
            None => None,
            Some(o) => {
                let mut e = o.lock();
                match e.err {
                    Some(err) => Some((err, e.cause.clone())),
                    None => {
                        e.children.retain(|w| w.strong_count() > 0);
                        e.children.push(Arc::downgrade(&c));
                        None
                    }
                }
            }
        };
        if let Some((err, cause)) = gone {
            c.cancel(err, cause);
            return c;
        }
        // A deadline earlier than the parent's needs a timer of its own.
        if let Some(d) = deadline.filter(|&d| Some(d) != self.deadline) {
            let t = DeadlineTimer(Arc::downgrade(&c));
            let id = self
                .rt
                .add_timer(d, 0, TimerAction::Expire(Arc::new(t)), Charge::NONE);
            let mut e = c.lock();
            match e.err {
                // Fired (or cancelled) already: the timer is done with.
                Some(_) => {
                    drop(e);
                    self.rt.stop_timer(id);
                }
                None => e.timer = Some(id),
            }
        }
        c
    }

    /// Ends socket wait `w` when this context ends (at once if it has);
    /// a context that never ends keeps nothing.
    pub(crate) fn watch(self: &Arc<Ctx>, w: &IoWaiter) {
        let Some(o) = self.owner() else { return };
        let mut e = o.lock();
        if e.err.is_some() {
            drop(e);
            w.cancel();
            return;
        }
        e.io.retain(|w| !w.claimed());
        e.io.push(w.clone());
    }

    /// A child carrying `key` and `value`, ended with its parent.
    fn with_value(self: &Arc<Ctx>, key: Key, value: Portable) -> Arc<Ctx> {
        Arc::new(Ctx {
            rt: self.rt.clone(),
            parent: Some(self.clone()),
            done: self.done.clone(),
            cancellable: false,
            deadline: self.deadline,
            value: Some((key, Arc::new(value))),
            ended: Mutex::default(),
        })
    }

    /// The value of the nearest context with `key`.
    fn value(self: &Arc<Ctx>, key: &Key) -> Option<Arc<Portable>> {
        let mut c = self;
        loop {
            if let Some((k, v)) = &c.value {
                if k == key {
                    return Some(v.clone());
                }
            }
            c = c.parent.as_ref()?;
        }
    }

    /// Cancels it (invariant 1); a no-op once it has ended, or for a
    /// context that is not cancellable.
    pub(crate) fn cancel(&self, err: &'static str, cause: Option<Arc<Portable>>) {
        if !self.cancellable {
            return;
        }
        let (children, timer, io) = {
            let mut e = self.lock();
            if e.err.is_some() {
                return;
            }
            e.err = Some(err);
            e.cause = cause.clone();
            (
                std::mem::take(&mut e.children),
                e.timer.take(),
                std::mem::take(&mut e.io),
            )
        };
        let _ = self.done.close();
        for w in io {
            w.cancel();
        }
        if let Some(id) = timer {
            self.rt.stop_timer(id);
        }
        for c in children.iter().filter_map(Weak::upgrade) {
            c.cancel(err, cause.clone());
        }
        // Off its ancestor's list: nothing is left to cancel here.
        if let Some(o) = self.parent.as_ref().and_then(|p| p.owner()) {
            o.lock()
                .children
                .retain(|w| !std::ptr::eq(w.as_ptr(), self as *const Ctx));
        }
    }
}

/// A new reference to the context at argument 1. The callers drop it
/// before any Lua call that may raise (it has a destructor).
unsafe fn ctx_arg(l: *mut ffi::lua_State, fname: &str) -> Result<Arc<Ctx>, Ret> {
    // SAFETY: `l` runs a closure made by `Registry` with its arguments on
    // the stack (the callers' contract): `Closure::arc` reads the box at 1
    // with inert calls; naming a wrong argument's type is inert.
    unsafe {
        let cl = Closure::of(l);
        match cl.arc::<Ctx>(l, 1) {
            Some(c) => {
                // It may be kept (a child's parent): a hand-out
                // (`lugo_vm::leak`).
                lugo_vm::leak::note_handout(cl.actor(), Arc::as_ptr(&c) as usize);
                Ok(c)
            }
            None => Err(expected(l, fname, "context", 1)),
        }
    }
}

/// `context.background()`.
unsafe extern "C-unwind" fn context_background(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `Registry` closure on the running thread `l`;
    // `guard` is its last act. The box is allocated while nothing is
    // owned, then filled with a context made then (plain Rust).
    unsafe {
        guard(l, || {
            let b = new_box::<Ctx>(l);
            fill(b, Arc::new(Ctx::background(actor(l).runtime().clone())));
            Ret::N(1)
        })
    }
}

/// The cancel function of the context at upvalue 1 (`cancel([cause])`).
unsafe extern "C-unwind" fn cancel_fn(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `with_cancel`, with the
    // context's box as upvalue 1) on the running thread `l`; `guard` is its
    // last act. The context is borrowed from the upvalue, which lives as
    // long as the closure; the cause is copied with inert calls.
    unsafe {
        guard(l, || {
            let up = ffi::lua_upvalueindex(1);
            let Some(c) = check::<Ctx>(l, up) else {
                return raise("cancel: internal error: no context");
            };
            let cause = match ffi::lua_type(l, 1) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => None,
                _ => match to_portable(Closure::of(l), l, 1, "cause") {
                    Ok(p) => Some(Arc::new(p)),
                    Err(e) => return raise(format!("cancel: {e}")),
                },
            };
            c.cancel(CANCELED, cause);
            Ret::N(0)
        })
    }
}

/// Pushes a child made by `make` from the context at argument 1, and its
/// cancel function: the results of `withcancel`, `withtimeout`,
/// `withdeadline`.
unsafe fn with_cancel(
    l: *mut ffi::lua_State,
    fname: &str,
    make: impl FnOnce(&Arc<Ctx>) -> Arc<Ctx>,
) -> Ret {
    // SAFETY: `l` is the running thread of one of those methods, with its
    // arguments on the stack (the callers' contract). The box is allocated
    // (may raise) while nothing is owned; the child is made and moved into
    // it (plain Rust; the parent's reference dropped at the end of the
    // `match`); the closure (may raise, nothing owned) takes a copy of the
    // box as its upvalue.
    unsafe {
        ffi::lua_settop(l, 2);
        let b = new_box::<Ctx>(l);
        let c = match ctx_arg(l, fname) {
            Ok(p) => make(&p),
            Err(r) => return r,
        };
        fill(b, c);
        ffi::lua_pushvalue(l, -1);
        ffi::lua_pushcclosure(l, cancel_fn, 1);
        Ret::N(2)
    }
}

unsafe extern "C-unwind" fn ctx_withcancel(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act. The parent is borrowed from argument 1 while the child is made
    // (plain Rust), then `with_cancel` pushes.
    unsafe { guard(l, || with_cancel(l, "ctx:withcancel", |p| p.child(None))) }
}

/// Argument 2 as seconds: a number, not NaN.
unsafe fn seconds_arg(l: *mut ffi::lua_State, fname: &str, what: &str) -> Result<f64, Ret> {
    // SAFETY: `l` is the running thread with argument 2 (the callers'
    // contract); it is read, or its type named: inert.
    unsafe {
        if ffi::lua_type(l, 2) != ffi::LUA_TNUMBER {
            let t = type_name(l, 2);
            return Err(raise(format!("{fname}: {what} must be a number, got {t}")));
        }
        let d = ffi::lua_tonumberx(l, 2, std::ptr::null_mut());
        if d.is_nan() {
            return Err(raise(format!("{fname}: {what} must not be NaN")));
        }
        Ok(d)
    }
}

/// `withtimeout(d)` (`at`: false) or `withdeadline(t)`, `t` on
/// `time.now()`'s clock: a deadline already passed gives a child ended
/// with `context deadline exceeded`.
unsafe fn with_deadline(l: *mut ffi::lua_State, at: bool) -> Ret {
    let (fname, what) = match at {
        false => ("ctx:withtimeout", "timeout"),
        true => ("ctx:withdeadline", "deadline"),
    };
    // SAFETY: as `ctx_withcancel`'s body, with argument 2 read by
    // `seconds_arg` (inert).
    unsafe {
        let d = match seconds_arg(l, fname, what) {
            Ok(d) => d,
            Err(r) => return r,
        };
        let now = now_ns();
        let when = match at {
            false if d <= 0.0 => now,
            false => now.saturating_add(secs_to_ns(d)),
            true if d <= 0.0 => 0,
            true => secs_to_ns(d),
        };
        with_cancel(l, fname, |p| {
            let c = p.child(Some(when));
            if when <= now {
                c.cancel(DEADLINE_EXCEEDED, None);
            }
            c
        })
    }
}

unsafe extern "C-unwind" fn ctx_withtimeout(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act: `with_deadline`'s contract.
    unsafe { guard(l, || with_deadline(l, false)) }
}

unsafe extern "C-unwind" fn ctx_withdeadline(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as `ctx_withtimeout`.
    unsafe { guard(l, || with_deadline(l, true)) }
}

/// The key at argument 2: a string, number (not NaN) or boolean.
unsafe fn key_arg(l: *mut ffi::lua_State, fname: &str) -> Result<Key, Ret> {
    // SAFETY: `l` is the running thread with argument 2 (the callers'
    // contract); it is read in place (a string is copied, not converted),
    // or its type named: inert.
    unsafe {
        Ok(match ffi::lua_type(l, 2) {
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, 2, &mut len);
                Key::Str(std::slice::from_raw_parts(p as *const u8, len).into())
            }
            ffi::LUA_TNUMBER => match number_at(l, 2) {
                Number::Integer(i) => Key::Int(i),
                Number::Float(f) if f.is_nan() => {
                    return Err(raise(format!("{fname}: key must not be NaN")))
                }
                // 2.0 and 2 are one key, as in a Lua table.
                Number::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Key::Int(f as i64),
                Number::Float(f) => Key::Num(f),
            },
            ffi::LUA_TBOOLEAN => Key::Bool(ffi::lua_toboolean(l, 2) != 0),
            _ => {
                let t = type_name(l, 2);
                return Err(raise(format!(
                    "{fname}: key must be a string, number or boolean, got {t}"
                )));
            }
        })
    }
}

unsafe extern "C-unwind" fn ctx_withvalue(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act. The context is checked and the key read (inert); the box is
    // allocated while nothing is owned; the
    // value is copied (inert) and the child made in plain Rust, then put in
    // the box.
    unsafe {
        guard(l, || {
            const F: &str = "ctx:withvalue";
            if check::<Ctx>(l, 1).is_none() {
                return expected(l, F, "context", 1);
            }
            let key = match key_arg(l, F) {
                Ok(k) => k,
                Err(r) => return r,
            };
            ffi::lua_settop(l, 3);
            // The box before the copy: a raise leaves nothing undropped.
            let b = new_box::<Ctx>(l);
            let value = match to_portable(Closure::of(l), l, 3, "value") {
                Ok(v) => v,
                Err(e) => return raise(format!("{F}: {e}")),
            };
            let c = match ctx_arg(l, F) {
                Ok(p) => p.with_value(key, value),
                Err(r) => return r,
            };
            fill(b, c);
            Ret::N(1)
        })
    }
}

/// Pushes a copy of `p` (or nil), built under `protect`.
unsafe fn push_copy(l: *mut ffi::lua_State, p: Option<Arc<Portable>>) -> Ret {
    // SAFETY: `l` is the running thread with a free slot (the callers'
    // contract); `p` is the caller's, alive across the protected push.
    unsafe {
        let Some(p) = p else {
            ffi::lua_pushnil(l);
            return Ret::N(1);
        };
        match lugo_vm::ffi::protect(l, 0, |l| {
            push_portable(l, &p);
            1
        }) {
            Ok(_) => Ret::N(1),
            Err(_) => Ret::Rethrow,
        }
    }
}

unsafe extern "C-unwind" fn ctx_value(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act. The lookup is plain Rust; `push_copy` pushes under `protect`.
    unsafe {
        guard(l, || {
            const F: &str = "ctx:value";
            let key = match key_arg(l, F) {
                Ok(k) => k,
                Err(r) => return r,
            };
            let v = match ctx_arg(l, F) {
                Ok(c) => c.value(&key),
                Err(r) => return r,
            };
            ffi::lua_settop(l, 2);
            push_copy(l, v)
        })
    }
}

/// Pushes the done channel of the context at argument 1 (the only value
/// left on the stack); false, with nothing pushed, if that is no context.
unsafe fn push_done(l: *mut ffi::lua_State) -> bool {
    // SAFETY: `l` runs a closure made by `Registry` with its arguments on
    // the stack (the callers' contract). The check borrows the context at
    // 1, on the stack throughout; the channel's box is allocated while
    // nothing is owned, then given a new reference to its channel.
    unsafe {
        ffi::lua_settop(l, 1);
        if check::<Ctx>(l, 1).is_none() {
            return false;
        }
        let b = new_box::<Chan>(l);
        fill(b, check::<Ctx>(l, 1).expect("checked").done.clone());
        true
    }
}

unsafe extern "C-unwind" fn ctx_done(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act: `push_done`'s contract.
    unsafe {
        guard(l, || match push_done(l) {
            true => Ret::N(1),
            false => expected(l, "ctx:done", "context", 1),
        })
    }
}

unsafe extern "C-unwind" fn ctx_err(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act. The error is a static string (pushed after the borrow ends).
    unsafe {
        guard(l, || {
            let err = match ctx_arg(l, "ctx:err") {
                Ok(c) => c.err(),
                Err(r) => return r,
            };
            match err {
                Some(e) => crate::cfn::push_str(l, e),
                None => ffi::lua_pushnil(l),
            }
            Ret::N(1)
        })
    }
}

unsafe extern "C-unwind" fn ctx_cause(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act. A cause is pushed as a copy (`push_copy`); without one, the
    // error (a static string), as Go's `context.Cause`.
    unsafe {
        guard(l, || {
            let (err, cause) = match ctx_arg(l, "ctx:cause") {
                Ok(c) => (c.err(), c.cause()),
                Err(r) => return r,
            };
            ffi::lua_settop(l, 1);
            match (err, cause) {
                (_, Some(p)) => push_copy(l, Some(p)),
                (Some(e), None) => {
                    crate::cfn::push_str(l, e);
                    Ret::N(1)
                }
                (None, None) => {
                    ffi::lua_pushnil(l);
                    Ret::N(1)
                }
            }
        })
    }
}

unsafe extern "C-unwind" fn ctx_deadline(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with its arguments on the stack; `guard` is its last
    // act; pushing a number is inert.
    unsafe {
        guard(l, || {
            let d = match ctx_arg(l, "ctx:deadline") {
                Ok(c) => c.deadline,
                Err(r) => return r,
            };
            match d {
                Some(ns) => ffi::lua_pushnumber(l, ns as f64 / 1e9),
                None => ffi::lua_pushnil(l),
            }
            Ret::N(1)
        })
    }
}

/// `context_done_of(v)`: the done channel of the context `v`, or nil if
/// `v` is not one (the prelude's blocking calls that take a context raise
/// then, at their caller).
unsafe extern "C-unwind" fn context_done_of(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `Registry` closure on the running thread `l`;
    // `guard` is its last act: `push_done`'s contract; a nil push is inert.
    unsafe {
        guard(l, || {
            if !push_done(l) {
                ffi::lua_pushnil(l);
            }
            Ret::N(1)
        })
    }
}

/// A context's methods.
pub(crate) const METHODS: [(&CStr, CFn); 9] = [
    (c"withcancel", ctx_withcancel),
    (c"withtimeout", ctx_withtimeout),
    (c"withdeadline", ctx_withdeadline),
    (c"withvalue", ctx_withvalue),
    (c"value", ctx_value),
    (c"done", ctx_done),
    (c"err", ctx_err),
    (c"cause", ctx_cause),
    (c"deadline", ctx_deadline),
];

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 2] = [
    (c"context_background", context_background),
    (c"context_done_of", context_done_of),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_compare_as_lua_table_keys_do() {
        assert_eq!(Key::Int(2), Key::Int(2));
        assert_ne!(Key::Int(2), Key::Str((*b"2").into()));
        assert_ne!(Key::Bool(true), Key::Int(1));
    }
}
