//! `debug.gethook` and `debug.sethook` as a script sees them: Lua's own,
//! with lugo's hooks out of sight.
//!
//! lugo preempts a goroutine by arming a count hook on its thread, which
//! chains the script's own hook (`lugo_vm::preempt`). Lua's `gethook`
//! would answer `external hook` with lugo's mask and count for it, and
//! `sethook` would replace it (a preemption lost, a stop's hook gone). So
//! `gethook` looks with lugo's hook taken off (`preempt::take_off`), and
//! both put it back after (`preempt::put_back`), chained with the hook
//! the script has now.
//!
//! Lua's C function is called directly, in the wrapper's own
//! frame, not through `lua_call`: there is no extra frame, so hooks see
//! the same call and return events, and an argument error names the
//! function as Lua would (`bad argument #1 to 'sethook'`), at the
//! caller's line. It raises only before it changes a hook (Lua's
//! `db_sethook` checks everything first); nothing of the wrapper's has a
//! destructor.

use std::ffi::{c_int, CStr};
use std::sync::OnceLock;

use lugo_vm::preempt::{self, LugoHook};
use mlua::{ffi, Lua};

use crate::cfn::CFn;

/// The thread whose hook `debug.gethook` and `debug.sethook` act on:
/// argument 1 if it is a thread (Lua's `getthread`), else the running one.
///
/// # Safety
/// `l` is the running thread of a C function.
unsafe fn target(l: *mut ffi::lua_State) -> *mut ffi::lua_State {
    // SAFETY: `l` is the running thread (the caller's contract); reading
    // argument 1 is inert.
    unsafe {
        if ffi::lua_type(l, 1) == ffi::LUA_TTHREAD {
            ffi::lua_tothread(l, 1)
        } else {
            l
        }
    }
}

/// Lua's own `debug.gethook` and `debug.sethook` (`db_gethook`,
/// `db_sethook`: plain C functions of the vendored Lua, the same in every
/// state), as [`install`] found them. Kept here, not as upvalues: a script
/// could change an upvalue (`debug.setupvalue`) into a C function that
/// must not run in this frame.
static GETHOOK: OnceLock<ffi::lua_CFunction> = OnceLock::new();
static SETHOOK: OnceLock<ffi::lua_CFunction> = OnceLock::new();

/// `debug.gethook([thread])`: Lua's, answered with lugo's hook off.
unsafe extern "C-unwind" fn gethook(l: *mut ffi::lua_State) -> c_int {
    // A raise of the original (memory, stack) loses a preemption taken
    // off: sysmon asks again.
    // SAFETY: Lua calls this (set by `install`) on the running thread `l`;
    // `orig` is Lua's plain C function without upvalues, run in this frame
    // as Lua would, owning nothing. The target, kept alive by argument 1 or
    // running, is a thread of this M's actor, as `take_off`/`put_back` need.
    // Popping the original's results (inert) leaves the arguments as they were.
    unsafe {
        let Some(&orig) = GETHOOK.get() else {
            return 0; // not installed without it
        };
        let l1 = target(l);
        loop {
            let before = preempt::take_off(l1);
            let n = orig(l);
            // A signal armed the preemption hook while Lua's looked: its
            // answer may show it. Look again.
            if before != LugoHook::Stop
                && matches!(
                    preempt::lugo_hook(l1),
                    LugoHook::Preempt(_) | LugoHook::Stop
                )
            {
                ffi::lua_pop(l, n);
                continue;
            }
            preempt::put_back(l, l1, before);
            return n;
        }
    }
}

/// `debug.sethook([thread,] hook, mask [, count])`: Lua's, then lugo's
/// hook on that thread armed again, chaining the new one.
unsafe extern "C-unwind" fn sethook(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: as in `gethook`. The original raises (bad arguments, memory)
    // before it sets a hook, so a raise leaves lugo's hook as it was.
    unsafe {
        let Some(&orig) = SETHOOK.get() else {
            return 0; // not installed without it
        };
        let l1 = target(l);
        let before = preempt::lugo_hook(l1);
        let n = orig(l);
        preempt::put_back(l, l1, before);
        n
    }
}

/// Puts lugo's `gethook` and `sethook` in the `debug` table in place of
/// Lua's. Without a `debug` library, or with functions that are not Lua's
/// plain C functions (the ones found first), nothing is replaced.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    let wrappers: [(&CStr, CFn, &OnceLock<ffi::lua_CFunction>); 2] = [
        (c"gethook", gethook, &GETHOOK),
        (c"sethook", sethook, &SETHOOK),
    ];
    // SAFETY: `exec_raw` runs the closure on the state's stack under a
    // protected call; it pushes the `debug` table, then for each name the
    // field (a read: `debug` is Lua's plain table) and maybe its first
    // upvalue, and pops them, storing the wrapper in the field's place
    // (which may raise "not enough memory", caught by `exec_raw`); then it
    // pops the table: the stack is left as it was. Nothing owned is alive.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            if ffi::lua_getglobal(l, c"debug".as_ptr()) == ffi::LUA_TTABLE {
                for (name, wrapper, orig) in wrappers {
                    let mut f = None;
                    if ffi::lua_getfield(l, -1, name.as_ptr()) == ffi::LUA_TFUNCTION {
                        f = ffi::lua_tocfunction(l, -1);
                        if !ffi::lua_getupvalue(l, -1, 1).is_null() {
                            ffi::lua_pop(l, 1);
                            f = None;
                        }
                    }
                    ffi::lua_pop(l, 1);
                    let Some(f) = f else { continue };
                    let kept = *orig.get_or_init(|| f);
                    if std::ptr::fn_addr_eq(kept, f) {
                        ffi::lua_pushcfunction(l, wrapper);
                        ffi::lua_setfield(l, -2, name.as_ptr());
                    }
                }
            }
            ffi::lua_pop(l, 1);
        })
    }
}
