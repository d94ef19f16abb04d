//! `sync`: wait groups, mutexes, read-write mutexes and weighted
//! semaphores (Rust half, C functions; `once` is Lua only). Each is a
//! [`crate::cfn::Boxed`] userdata whose methods are these functions;
//! `wait`, `lock`, `rlock` and `acquire` park by yielding from C.

use std::ffi::{c_int, CStr};
use std::sync::Arc;

use lugo_vm::sema::{Acquire, RwMutex, SemMutex, Semaphore, WaitGroup};
use lugo_vm::WaitReason;
use mlua::ffi;

use crate::cfn::{
    check, expected, fill, guard, me, new_box, push, raise, type_name, CFn, Closure, Raw, Ret,
    CANNOT_PARK, MT_MUTEX, MT_RWMUTEX, MT_SEMAPHORE, MT_WAITGROUP,
};

impl Raw for WaitGroup {
    const NAME: &'static CStr = c"lugo.waitgroup";
    const SHARED: bool = true;
    const SHORT: &'static str = "waitgroup";
    const MAGIC: u64 = 0x6c75_676f_7767_7270;
    const MT_UPVALUE: c_int = MT_WAITGROUP;
}

impl Raw for SemMutex {
    const NAME: &'static CStr = c"lugo.mutex";
    const SHARED: bool = true;
    const SHORT: &'static str = "mutex";
    const MAGIC: u64 = 0x6c75_676f_6d75_7478;
    const MT_UPVALUE: c_int = MT_MUTEX;
}

impl Raw for RwMutex {
    const NAME: &'static CStr = c"lugo.rwmutex";
    const SHARED: bool = true;
    const SHORT: &'static str = "rwmutex";
    const MAGIC: u64 = 0x6c75_676f_7277_6d78;
    const MT_UPVALUE: c_int = MT_RWMUTEX;
}

impl Raw for Semaphore {
    const NAME: &'static CStr = c"lugo.semaphore";
    const SHARED: bool = true;
    const SHORT: &'static str = "semaphore";
    const MAGIC: u64 = 0x6c75_676f_7365_6d61;
    const MT_UPVALUE: c_int = MT_SEMAPHORE;
}

/// Registry keys of the prelude's variants of `wg:wait`, `mu:lock` and
/// `sem:acquire` given a context (`lugo_stdlib::open` keeps them).
pub(crate) const WAIT_CTX: &CStr = c"lugo.wait_ctx";
/// See [`WAIT_CTX`].
pub(crate) const LOCK_CTX: &CStr = c"lugo.lock_ctx";
/// See [`WAIT_CTX`].
pub(crate) const ACQUIRE_CTX: &CStr = c"lugo.acquire_ctx";

fn acquired(r: Acquire) -> Ret {
    match r {
        Acquire::Done => Ret::N(0),
        Acquire::Park => Ret::Park(WaitReason::Semacquire),
        Acquire::CannotPark => raise(CANNOT_PARK),
    }
}

unsafe extern "C-unwind" fn wg_new(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The box is allocated
    // before the wait group exists (`push`): nothing owned is alive across
    // the raising allocation.
    unsafe {
        guard(l, || {
            push(l, || Arc::new(WaitGroup::default()));
            Ret::N(1)
        })
    }
}

unsafe fn add(l: *mut ffi::lua_State, fname: &str, delta: Option<i64>) -> Ret {
    // SAFETY: `l` is the running thread of a wait group method's closure
    // (made by `Registry`), with its arguments on the stack (the callers'
    // contract, `wg_add` and `wg_done`). The wait group is borrowed from
    // argument 1, on the stack throughout; the other calls read argument 2 or
    // name its type (inert).
    unsafe {
        let Some(wg) = check::<WaitGroup>(l, 1) else {
            return expected(l, fname, "waitgroup", 1);
        };
        let delta = match delta {
            Some(d) => d,
            None => match ffi::lua_type(l, 2) {
                ffi::LUA_TNONE | ffi::LUA_TNIL => 1,
                _ => {
                    let mut isint = 0;
                    let n = ffi::lua_tointegerx(l, 2, &mut isint);
                    if isint == 0 || ffi::lua_type(l, 2) != ffi::LUA_TNUMBER {
                        let t = type_name(l, 2);
                        return raise(format!("{fname}: delta must be an integer, got {t}"));
                    }
                    n
                }
            },
        };
        match wg.add(delta) {
            Ok(()) => Ret::N(0),
            Err(e) => raise(e),
        }
    }
}

unsafe extern "C-unwind" fn wg_add(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. That is `add`'s
    // contract.
    unsafe { guard(l, || add(l, "waitgroup:add", None)) }
}

unsafe extern "C-unwind" fn wg_done(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. That is `add`'s
    // contract.
    unsafe { guard(l, || add(l, "waitgroup:done", Some(-1))) }
}

unsafe extern "C-unwind" fn wg_wait(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The wait group is
    // borrowed from argument 1, on the stack throughout; `me` needs the
    // running thread of an actor owned by this M: Lua runs an actor's code on
    // its M only. Given a userdata (a context) at 2, the call goes to the
    // prelude's `wait_ctx` (`delegate`, the last act, nothing owned).
    unsafe {
        if ffi::lua_type(l, 2) == ffi::LUA_TUSERDATA && check::<WaitGroup>(l, 1).is_some() {
            return crate::cfn::delegate(l, WAIT_CTX, 2);
        }
        guard(l, || {
            let cl = Closure::of(l);
            let Some(wg) = cl.check::<WaitGroup>(l, 1) else {
                return expected(l, "waitgroup:wait", "waitgroup", 1);
            };
            let a = cl.actor();
            acquired(wg.wait(|| me(l, a)))
        })
    }
}

unsafe extern "C-unwind" fn mutex_new(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The box is allocated
    // before the mutex exists (`push`): nothing owned is alive across the
    // raising allocation.
    unsafe {
        guard(l, || {
            push(l, || Arc::new(SemMutex::default()));
            Ret::N(1)
        })
    }
}

unsafe extern "C-unwind" fn mutex_lock(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The mutex is borrowed
    // from argument 1, on the stack throughout; `me` needs the running thread
    // of an actor owned by this M: Lua runs an actor's code on its M only.
    // Given a userdata (a context) at 2, the call goes to the prelude's
    // `lock_ctx` (`delegate`, the last act, nothing owned).
    unsafe {
        if ffi::lua_type(l, 2) == ffi::LUA_TUSERDATA && check::<SemMutex>(l, 1).is_some() {
            return crate::cfn::delegate(l, LOCK_CTX, 2);
        }
        guard(l, || {
            let cl = Closure::of(l);
            let Some(m) = cl.check::<SemMutex>(l, 1) else {
                return expected(l, "mutex:lock", "mutex", 1);
            };
            let a = cl.actor();
            acquired(m.lock(|| me(l, a)))
        })
    }
}

unsafe extern "C-unwind" fn mutex_trylock(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The mutex is borrowed
    // from argument 1, on the stack throughout; pushing a boolean is inert.
    unsafe {
        guard(l, || match check::<SemMutex>(l, 1) {
            Some(m) => {
                ffi::lua_pushboolean(l, m.try_lock() as c_int);
                Ret::N(1)
            }
            None => expected(l, "mutex:trylock", "mutex", 1),
        })
    }
}

unsafe extern "C-unwind" fn mutex_unlock(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The mutex is borrowed
    // from argument 1, on the stack throughout; the only Lua calls are
    // `expected`'s inert ones.
    unsafe {
        guard(l, || match check::<SemMutex>(l, 1) {
            Some(m) => match m.unlock() {
                Ok(()) => Ret::N(0),
                Err(e) => raise(e),
            },
            None => expected(l, "mutex:unlock", "mutex", 1),
        })
    }
}

/// Runs `op` on the `T` at argument 1 (a method named `fname`), or raises
/// `fname: <what> expected`.
unsafe fn with_arg<T: Raw>(
    l: *mut ffi::lua_State,
    fname: &str,
    what: &str,
    op: impl FnOnce(&T, &Closure) -> Ret,
) -> Ret {
    // SAFETY: `l` runs a closure made by `Registry` with its arguments on
    // the stack (the callers' contract); the `T` is borrowed from argument
    // 1, on the stack throughout `op`.
    unsafe {
        let cl = Closure::of(l);
        match cl.check::<T>(l, 1) {
            Some(v) => op(v, &cl),
            None => expected(l, fname, what, 1),
        }
    }
}

/// A result of `Ok(())` or an error message to raise.
fn done(r: Result<(), &'static str>) -> Ret {
    match r {
        Ok(()) => Ret::N(0),
        Err(e) => raise(e),
    }
}

/// Pushes a boolean: `true` when `ok`.
unsafe fn pushed(l: *mut ffi::lua_State, ok: bool) -> Ret {
    // SAFETY: `l` is the running thread with a free slot (the callers').
    unsafe { ffi::lua_pushboolean(l, ok as c_int) };
    Ret::N(1)
}

unsafe extern "C-unwind" fn rwmutex_new(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `Registry` closure on the running thread `l`;
    // `guard` is its last act. The box is allocated before the rwmutex
    // exists (`push`).
    unsafe {
        guard(l, || {
            push(l, || Arc::new(RwMutex::default()));
            Ret::N(1)
        })
    }
}

macro_rules! method {
    ($name:ident, $t:ty, $fname:literal, $what:literal, |$v:ident, $l:ident, $cl:ident| $body:expr) => {
        unsafe extern "C-unwind" fn $name($l: *mut ffi::lua_State) -> c_int {
            // SAFETY: Lua calls this C function (made by `Registry`) on the
            // running thread, with its arguments on the stack; `guard` is
            // its last act, and `with_arg` borrows the object from argument
            // 1 for the body, whose Lua calls are inert (reading arguments,
            // pushing a boolean) or park (`me`, on the actor's own M).
            unsafe { guard($l, || with_arg::<$t>($l, $fname, $what, |$v, $cl| $body)) }
        }
    };
}

method!(rw_rlock, RwMutex, "rwmutex:rlock", "rwmutex", |m, l, cl| {
    let a = cl.actor();
    acquired(m.rlock(|| me(l, a)))
});
method!(
    rw_runlock,
    RwMutex,
    "rwmutex:runlock",
    "rwmutex",
    |m, l, _cl| done(m.runlock())
);
method!(rw_lock, RwMutex, "rwmutex:lock", "rwmutex", |m, l, cl| {
    let a = cl.actor();
    acquired(m.lock(|| me(l, a)))
});
method!(
    rw_unlock,
    RwMutex,
    "rwmutex:unlock",
    "rwmutex",
    |m, l, _cl| done(m.unlock())
);
method!(
    rw_tryrlock,
    RwMutex,
    "rwmutex:tryrlock",
    "rwmutex",
    |m, l, _cl| pushed(l, m.try_rlock())
);
method!(
    rw_trylock,
    RwMutex,
    "rwmutex:trylock",
    "rwmutex",
    |m, l, _cl| pushed(l, m.try_lock())
);

/// The count at argument 2 of semaphore method `fname`: 1 if absent, else
/// an integer from 1 to the size.
unsafe fn units(l: *mut ffi::lua_State, fname: &str, size: u64) -> Result<u64, Ret> {
    // SAFETY: `l` is the running thread with argument 2 (the callers'
    // contract); it is read, or its type named: inert.
    unsafe {
        match ffi::lua_type(l, 2) {
            ffi::LUA_TNONE | ffi::LUA_TNIL => Ok(1),
            ffi::LUA_TNUMBER => {
                let mut isint = 0;
                let n = ffi::lua_tointegerx(l, 2, &mut isint);
                if isint == 0 || n < 1 || n as u64 > size {
                    return Err(raise(format!(
                        "{fname}: count must be an integer from 1 to {size}"
                    )));
                }
                Ok(n as u64)
            }
            _ => {
                let t = type_name(l, 2);
                Err(raise(format!("{fname}: count must be an integer, got {t}")))
            }
        }
    }
}

unsafe extern "C-unwind" fn semaphore_new(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `Registry` closure on the running thread `l`;
    // `guard` is its last act. The size is read (inert), then the box is
    // allocated (may raise) while nothing is owned and filled after.
    unsafe {
        guard(l, || {
            let mut isint = 0;
            let n = ffi::lua_tointegerx(l, 1, &mut isint);
            if isint == 0 || ffi::lua_type(l, 1) != ffi::LUA_TNUMBER || n < 1 {
                let shown = match ffi::lua_type(l, 1) {
                    ffi::LUA_TNUMBER => crate::cfn::to_display(l, 1),
                    _ => type_name(l, 1),
                };
                return raise(format!(
                    "sync.semaphore: size must be a positive integer, got {shown}"
                ));
            }
            let b = new_box::<Semaphore>(l);
            fill(b, Arc::new(Semaphore::new(n as u64)));
            Ret::N(1)
        })
    }
}

unsafe extern "C-unwind" fn sem_acquire(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on the running
    // thread, with its arguments on the stack; `guard` is its last act, and
    // `with_arg` borrows the semaphore from argument 1 for the body, whose
    // Lua calls are inert (reading the count) or park (`me`, on the
    // actor's own M). Given a userdata (a context) at 2 or 3, the call goes
    // to the prelude's `acquire_ctx` (`delegate`, the last act, nothing
    // owned).
    unsafe {
        let ctx_given =
            ffi::lua_type(l, 2) == ffi::LUA_TUSERDATA || ffi::lua_type(l, 3) == ffi::LUA_TUSERDATA;
        if ctx_given && check::<Semaphore>(l, 1).is_some() {
            return crate::cfn::delegate(l, ACQUIRE_CTX, 3);
        }
        guard(l, || {
            with_arg::<Semaphore>(l, "semaphore:acquire", "semaphore", |s, cl| {
                match units(l, "semaphore:acquire", s.size()) {
                    Ok(k) => {
                        let a = cl.actor();
                        acquired(s.acquire(k, || me(l, a)))
                    }
                    Err(r) => r,
                }
            })
        })
    }
}

method!(
    sem_tryacquire,
    Semaphore,
    "semaphore:tryacquire",
    "semaphore",
    |s, l, _cl| {
        match units(l, "semaphore:tryacquire", s.size()) {
            Ok(k) => pushed(l, s.try_acquire(k)),
            Err(r) => r,
        }
    }
);
method!(
    sem_release,
    Semaphore,
    "semaphore:release",
    "semaphore",
    |s, l, _cl| {
        match units(l, "semaphore:release", s.size()) {
            Ok(k) => done(s.release(k)),
            Err(r) => r,
        }
    }
);

/// The read-write mutex methods.
pub(crate) const RWMUTEX_METHODS: [(&CStr, CFn); 6] = [
    (c"rlock", rw_rlock),
    (c"runlock", rw_runlock),
    (c"lock", rw_lock),
    (c"unlock", rw_unlock),
    (c"tryrlock", rw_tryrlock),
    (c"trylock", rw_trylock),
];

/// The semaphore methods.
pub(crate) const SEMAPHORE_METHODS: [(&CStr, CFn); 3] = [
    (c"acquire", sem_acquire),
    (c"tryacquire", sem_tryacquire),
    (c"release", sem_release),
];

/// The wait group methods.
pub(crate) const WG_METHODS: [(&CStr, CFn); 3] =
    [(c"add", wg_add), (c"done", wg_done), (c"wait", wg_wait)];

/// The mutex methods.
pub(crate) const MUTEX_METHODS: [(&CStr, CFn); 3] = [
    (c"lock", mutex_lock),
    (c"unlock", mutex_unlock),
    (c"trylock", mutex_trylock),
];

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 4] = [
    (c"waitgroup", wg_new),
    (c"mutex", mutex_new),
    (c"rwmutex", rwmutex_new),
    (c"semaphore", semaphore_new),
];
