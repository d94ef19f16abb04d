//! Calls that wait on the outside world: `io.read`, `os.execute`, a
//! file's `read`, the iterators of `io.lines` and a file's `lines`, and
//! the host's blocking functions. Each runs with the M's P marked as in a
//! blocking call (Go's `entersyscall`), so sysmon can hand the P to
//! another M meanwhile (see `lugo_vm::sched::syscall`); the wait is not
//! charged to the actor's CPU budget.
//!
//! Invariant: a Lua program cannot tell the library's functions from
//! these stand-ins. Each is a C closure over Lua's own function that calls
//! it under `lua_pcall` (the P must be taken back whatever happens), so an
//! error raised inside comes out as if from a call by C: no position, no
//! name. [`as_if_direct`] gives it what Lua's direct call gives, the
//! caller's position and the name Lua finds for the function (a method
//! call's `self` not counted), so `io.read("x")` says
//! `script.lua:1: bad argument #1 to 'read' (invalid format)`, as in Lua.

use std::ffi::{c_int, CStr};

use lugo_vm::ffi::push_owned;
use mlua::{ffi, Lua};

/// Calls the function below the top `nargs` values as `lua_pcall` does
/// (all its results), with the M's P marked as in a blocking call.
///
/// # Safety
/// `l` is the running thread of a lugo actor, with the function and
/// `nargs` arguments on top.
unsafe fn pcall_released(l: *mut ffi::lua_State, nargs: c_int) -> c_int {
    // The runtime handle lives in this function only: the caller may raise
    // once it has returned (ffi rule 2); lua_pcall itself does not raise.
    // SAFETY: `l` runs a lugo C function of an opened actor's state (the
    // caller's contract: `released`, made by `install` or `lines`, and
    // `blocking`, made by `Registry`, are).
    let actor = unsafe { crate::cfn::actor(l) };
    let rt = actor.runtime();
    let pid = rt.enter_syscall();
    actor.set_blocking(true);
    // Waiting is not running: the CPU budget does not count it. (Timed
    // only under a budget: a line of `io.lines` costs little more than a
    // clock.)
    let start = rt.has_cpu_budget().then(std::time::Instant::now);
    // SAFETY: `l` is the running thread with the function and `nargs`
    // arguments on top (the caller's contract). `lua_pcall` catches every
    // error, and without a continuation a yield inside fails as an error, so
    // it returns here: `rt` is not skipped.
    let status = unsafe { ffi::lua_pcall(l, nargs, ffi::LUA_MULTRET, 0) };
    if let Some(start) = start {
        actor.credit_blocked(start.elapsed());
    }
    actor.set_blocking(false);
    if let Some(pid) = pid {
        rt.exit_syscall(pid);
    }
    status
}

/// The stand-in for a library function that blocks (its upvalue).
unsafe extern "C-unwind" fn released(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this stand-in (a closure made by `install` or
    // `lines`: its upvalue is Lua's function) on `l`, the running thread,
    // with its arguments on the stack and room for one more value (a C
    // function starts with `LUA_MINSTACK`). `pcall_released` finds
    // the function below the arguments; on an error, `as_if_direct` finds the
    // error on top at level 0, and `lua_error` raises it with nothing owned
    // in this frame.
    unsafe {
        let nargs = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        let status = pcall_released(l, nargs);
        if status != ffi::LUA_OK {
            as_if_direct(l, status);
            ffi::lua_error(l);
        }
        ffi::lua_gettop(l)
    }
}

/// The stand-in for `io.lines` or a file's `lines` (its upvalue): Lua's,
/// whose iterator (its first result) gets a stand-in of its own. Opening
/// the file is not counted as blocking.
unsafe extern "C-unwind" fn lines(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this stand-in (a closure made by `install`: its
    // upvalue is Lua's `lines`) on `l`, the running thread, with
    // its arguments on the stack and room for the function. `lua_pcall`
    // catches an error, which `as_if_direct` finds on top at level 0 and
    // `lua_error` raises with nothing owned in this frame. The iterator's
    // stand-in gets the iterator as its upvalue, as `released` requires
    // (room checked; the closure's allocation may raise, nothing owned).
    unsafe {
        let nargs = ffi::lua_gettop(l);
        ffi::lua_pushvalue(l, ffi::lua_upvalueindex(1));
        ffi::lua_insert(l, 1);
        let status = ffi::lua_pcall(l, nargs, ffi::LUA_MULTRET, 0);
        if status != ffi::LUA_OK {
            as_if_direct(l, status);
            ffi::lua_error(l);
        }
        if ffi::lua_type(l, 1) == ffi::LUA_TFUNCTION {
            ffi::luaL_checkstack(l, 1, std::ptr::null());
            ffi::lua_pushvalue(l, 1);
            ffi::lua_pushcclosure(l, released, 1);
            ffi::lua_replace(l, 1);
        }
        ffi::lua_gettop(l)
    }
}

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, crate::cfn::CFn); 1] = [(c"blocking", blocking)];

/// `blocking(name, f, ...)`, for the host's blocking functions (behind a
/// Lua wrapper in the prelude, which raises their `ERR` answers): calls
/// `f(...)` as [`released`] does.
unsafe extern "C-unwind" fn blocking(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its arguments on the stack
    // (the prelude's wrapper passes `name, f, args...`). Fewer than two is
    // an error, raised by `luaL_error` (a static message without `%`); past
    // that check `f` is at 2, below the `nargs` arguments, as
    // `pcall_released` requires (a non-function fails as a call of it
    // does). Errors are raised with nothing owned in this frame.
    unsafe {
        if ffi::lua_gettop(l) < 2 {
            ffi::luaL_error(l, c"blocking: a name and a function expected".as_ptr());
        }
        let nargs = ffi::lua_gettop(l) - 2;
        let status = pcall_released(l, nargs);
        if status != ffi::LUA_OK {
            ffi::lua_error(l);
        }
        ffi::lua_gettop(l) - 1
    }
}

/// Gives the error on top, raised by Lua's function called from a
/// stand-in, what a direct call from the stand-in's caller would have
/// given it: that caller's position and, in an argument error, the
/// stand-in's name. A memory error and non-strings stay as they are.
/// Owns nothing across its raising calls: the new message is handed off.
///
/// # Safety
/// `l` is running a stand-in (level 0), with the error on top.
unsafe fn as_if_direct(l: *mut ffi::lua_State, status: c_int) {
    // SAFETY: `l` is running a stand-in (level 0) with the error on top (the
    // caller's contract); it is a string when read (`top_str` converts
    // nothing). `own_name` and `top_str` make inert calls only; the owned
    // names and message are dropped, or handed off (`push_owned`), before the
    // raising calls (`push_owned`, `luaL_where`, `lua_concat`).
    unsafe {
        if status != ffi::LUA_ERRRUN || ffi::lua_type(l, -1) != ffi::LUA_TSTRING {
            return;
        }
        if is_argerror(&top_str(l)) {
            // Named first: nothing of ours is alive across its Lua calls.
            let fixed = {
                let (name, method) = own_name(l);
                direct_argerror(&top_str(l), name.as_deref(), method)
            };
            ffi::lua_pop(l, 1);
            push_owned(l, fixed);
        }
        ffi::luaL_where(l, 1);
        ffi::lua_insert(l, -2);
        ffi::lua_concat(l, 2);
    }
}

/// The string on top of `l`'s stack (it is one), borrowed from the state.
unsafe fn top_str<'a>(l: *mut ffi::lua_State) -> std::borrow::Cow<'a, str> {
    // SAFETY: the value on top of the valid state `l` is a string (the
    // caller, `as_if_direct`, checked it), so nothing is converted and `p`
    // points at its `len` bytes, alive while it stays on the stack; the
    // callers are done with the result before it is popped.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, -1, &mut len);
        String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len))
    }
}

/// Whether `msg` is `luaL_argerror`'s, from a function Lua found no name
/// for (called from C, as from a stand-in).
fn is_argerror(msg: &str) -> bool {
    msg.starts_with("bad argument #") && msg.contains(" to '?' (")
}

/// `luaL_argerror`'s message for the function `name` (none: `?`), called
/// as a method or not, from `msg`, its message for an unnamed function
/// called as a plain function.
fn direct_argerror(msg: &str, name: Option<&str>, method: bool) -> String {
    let rest = &msg["bad argument #".len()..];
    let Some((num, extra)) = rest.split_once(" to '?' ") else {
        return msg.to_owned();
    };
    let Ok(mut arg) = num.parse::<i64>() else {
        return msg.to_owned();
    };
    let name = name.unwrap_or("?");
    if method {
        arg -= 1;
        if arg == 0 {
            return format!("calling '{name}' on bad self {extra}");
        }
    }
    format!("bad argument #{arg} to '{name}' {extra}")
}

/// The running function's name as `luaL_argerror` finds it: from the
/// calling instruction, else from `package.loaded` (`io.read`); and
/// whether it was called as a method.
///
/// # Safety
/// `l` is running a C function (level 0).
unsafe fn own_name(l: *mut ffi::lua_State) -> (Option<String>, bool) {
    // SAFETY: `l` is running a C function, level 0 (the caller's contract):
    // `lua_getstack` and `lua_getinfo` fill `ar` (zeroed: a valid
    // `lua_Debug`) and push the function (room: a C function starts with
    // `LUA_MINSTACK`); `name` and `namewhat` are null or NUL-terminated
    // strings alive for this call, copied at once; `loaded_name` finds the
    // function on top, as it requires; the pop leaves the stack as it was.
    // All inert.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(l, 0, &mut ar) == 0
            || ffi::lua_getinfo(l, c"nf".as_ptr(), &mut ar) == 0
        {
            return (None, false);
        }
        let cstr = |p: *const std::ffi::c_char| {
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().into_owned())
        };
        let method = cstr(ar.namewhat).as_deref() == Some("method");
        // [function]
        let name = cstr(ar.name).or_else(|| loaded_name(l));
        ffi::lua_pop(l, 1);
        (name, method)
    }
}

/// Lua's `pushglobalfuncname`, without pushing: the `module.field` under
/// which `package.loaded` holds the function on top (`_G.` left out).
///
/// # Safety
/// The function is on top of `l`'s stack; leaves the stack as it was.
unsafe fn loaded_name(l: *mut ffi::lua_State) -> Option<String> {
    // SAFETY: the function is on top of `l`'s stack (the caller's contract),
    // and room is checked for the six values pushed at most. `package.loaded`
    // is the registry's `_LOADED` table (the package library made it; the
    // registry has no metatable), walked with `lua_next` and read raw; names
    // are read from values that are strings (no conversion) and copied before
    // they are popped; `lua_settop` puts the stack back. All inert: `found`
    // is owned across no raising call.
    unsafe {
        let func = ffi::lua_gettop(l);
        if ffi::lua_checkstack(l, 6) == 0 {
            return None;
        }
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, c"_LOADED".as_ptr());
        let mut found = None;
        ffi::lua_pushnil(l);
        'modules: while ffi::lua_next(l, -2) != 0 {
            // [loaded, module name, module]
            if ffi::lua_type(l, -2) == ffi::LUA_TSTRING && ffi::lua_type(l, -1) == ffi::LUA_TTABLE {
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    // [loaded, module name, module, field, value]
                    if ffi::lua_type(l, -2) == ffi::LUA_TSTRING
                        && ffi::lua_rawequal(l, -1, func) != 0
                    {
                        let module = CStr::from_ptr(ffi::lua_tostring(l, -4)).to_string_lossy();
                        let field = CStr::from_ptr(ffi::lua_tostring(l, -2)).to_string_lossy();
                        found = Some(if module == "_G" {
                            field.into_owned()
                        } else {
                            format!("{module}.{field}")
                        });
                        ffi::lua_pop(l, 2);
                        break 'modules;
                    }
                    ffi::lua_pop(l, 1);
                }
            }
            ffi::lua_pop(l, 1);
        }
        ffi::lua_settop(l, func);
        found
    }
}

/// Puts the stand-ins in place of Lua's `io.read`, `io.lines`,
/// `os.execute`, and a file's `read` and `lines`.
pub(crate) fn install(lua: &Lua) -> mlua::Result<()> {
    // SAFETY: exec_raw runs this as a protected call on the state; each
    // step takes a library table, wraps one of its functions in a closure
    // (the function its upvalue) and stores it back, leaving the stack
    // balanced.
    unsafe {
        lua.exec_raw::<()>((), |l| {
            let wrap = |table: c_int, field: &CStr, body: ffi::lua_CFunction| {
                ffi::lua_getfield(l, table, field.as_ptr());
                ffi::lua_pushcclosure(l, body, 1);
                ffi::lua_setfield(l, table - 1, field.as_ptr());
            };
            ffi::lua_getglobal(l, c"io".as_ptr());
            wrap(-1, c"read", released);
            wrap(-1, c"lines", lines);
            ffi::lua_getglobal(l, c"os".as_ptr());
            wrap(-1, c"execute", released);
            ffi::luaL_getmetatable(l, c"FILE*".as_ptr());
            ffi::lua_getfield(l, -1, c"__index".as_ptr());
            wrap(-1, c"read", released);
            wrap(-1, c"lines", lines);
            ffi::lua_settop(l, 0);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::IntoLuaMulti;

    #[test]
    fn an_argument_error_gets_the_name_a_direct_call_has() {
        let msg = "bad argument #1 to '?' (invalid format)";
        assert!(is_argerror(msg));
        assert_eq!(
            direct_argerror(msg, Some("io.read"), false),
            "bad argument #1 to 'io.read' (invalid format)"
        );
        assert_eq!(
            direct_argerror(msg, None, false),
            "bad argument #1 to '?' (invalid format)"
        );
    }

    #[test]
    fn a_method_call_does_not_count_self() {
        let msg = "bad argument #2 to '?' (invalid format)";
        assert_eq!(
            direct_argerror(msg, Some("read"), true),
            "bad argument #1 to 'read' (invalid format)"
        );
        let bad_self = "bad argument #1 to '?' (FILE* expected, got string)";
        assert_eq!(
            direct_argerror(bad_self, Some("read"), true),
            "calling 'read' on bad self (FILE* expected, got string)"
        );
    }

    #[test]
    fn other_errors_are_not_argument_errors() {
        assert!(!is_argerror(
            "cannot open file 'x' (No such file or directory)"
        ));
        assert!(!is_argerror("bad argument #1 to 'read' (invalid format)"));
    }

    #[test]
    fn blocking_without_a_name_and_a_function_is_an_error() {
        let lua = Lua::new();
        // SAFETY: `blocking` is a C function; with fewer than two arguments
        // it raises before it reads an upvalue (this one has none).
        let f = unsafe { lua.create_c_function(blocking) }.unwrap();
        for args in [
            mlua::MultiValue::new(),
            ("name",).into_lua_multi(&lua).unwrap(),
        ] {
            let err = f.call::<()>(args).unwrap_err().to_string();
            assert!(
                err.contains("blocking: a name and a function expected"),
                "{err}"
            );
        }
    }
}
