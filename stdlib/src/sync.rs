//! `sync`: wait groups and mutexes (Rust half, C functions; `once` is Lua
//! only). Both are [`crate::cfn::Boxed`] userdata whose methods are these
//! functions; `wait` and `lock` park by yielding from C.

use std::ffi::{c_int, CStr};
use std::sync::Arc;

use lugo_vm::sema::{Acquire, SemMutex, WaitGroup};
use lugo_vm::WaitReason;
use mlua::ffi;

use crate::cfn::{
    check, expected, guard, me, push, raise, type_name, CFn, Closure, Raw, Ret, CANNOT_PARK,
    MT_MUTEX, MT_WAITGROUP,
};

impl Raw for WaitGroup {
    const NAME: &'static CStr = c"lugo.waitgroup";
    const SHORT: &'static str = "waitgroup";
    const MAGIC: u64 = 0x6c75_676f_7767_7270;
    const MT_UPVALUE: c_int = MT_WAITGROUP;
}

impl Raw for SemMutex {
    const NAME: &'static CStr = c"lugo.mutex";
    const SHORT: &'static str = "mutex";
    const MAGIC: u64 = 0x6c75_676f_6d75_7478;
    const MT_UPVALUE: c_int = MT_MUTEX;
}

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
    // its M only.
    unsafe {
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
    unsafe {
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
pub(crate) const FUNCTIONS: [(&CStr, CFn); 2] = [(c"waitgroup", wg_new), (c"mutex", mutex_new)];
