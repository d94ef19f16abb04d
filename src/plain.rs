//! `lugo --plain`: runs the `-e` chunks and the script in a plain Lua
//! state of lugo's own Lua build (mlua's vendored Lua 5.4, the allocator
//! of the binary) with none of lugo's code: no scheduler, no goroutines,
//! the standard library as Lua has it. It is the baseline of the official
//! Lua test suite (`tests/lua_suite.rs`) and the floor of benchmarks: the
//! same work, the same binary, nothing of lugo.
//!
//! As `lua.c` does: the global `arg`, the script's arguments as `...`, an
//! uncaught error printed as `lua: message` with a traceback, status 1.

use std::process::ExitCode;

use std::ffi::c_int;

use mlua::{ffi, Function, Lua, MultiValue, StdLib, Value};

/// Runs `chunks` (the `-e` sources) and then the script at `script` (if
/// any) with `args`; `arg` is `argv` with the script at index `script_at`.
pub fn run(
    chunks: &[String],
    script: Option<(&str, &[String])>,
    argv: &[String],
    script_at: usize,
) -> ExitCode {
    // SAFETY: an unsafe state may load the `debug` library, as `lua` does.
    let lua = unsafe { Lua::unsafe_new_with(StdLib::ALL, mlua::LuaOptions::default()) };
    match run_in(&lua, chunks, script, argv, script_at) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("lua: {msg}");
            ExitCode::from(1)
        }
    }
}

fn run_in(
    lua: &Lua,
    chunks: &[String],
    script: Option<(&str, &[String])>,
    argv: &[String],
    script_at: usize,
) -> Result<(), String> {
    let arg = lua.create_table().map_err(|e| e.to_string())?;
    for (i, a) in argv.iter().enumerate() {
        arg.raw_set(i as i64 - script_at as i64, a.as_str())
            .map_err(|e| e.to_string())?;
    }
    lua.globals().set("arg", arg).map_err(|e| e.to_string())?;
    let run_one = |f: Function, args: MultiValue| -> Result<(), String> {
        // SAFETY: `docall` takes the function and its arguments that
        // mlua pushed, and leaves the error message, if any, as the result.
        let err: Option<String> =
            unsafe { lua.exec_raw((f, args), |l| docall(l)) }.map_err(|e| e.to_string())?;
        err.map_or(Ok(()), Err)
    };
    for src in chunks {
        let f = lua
            .load(src.as_str())
            .set_name("=(command line)")
            .into_function()
            .map_err(load_error)?;
        run_one(f, MultiValue::new())?;
    }
    if let Some((path, args)) = script {
        let mut src = std::fs::read(path).map_err(|e| format!("cannot open {path}: {e}"))?;
        if src.starts_with(b"\xEF\xBB\xBF") {
            src.drain(..3);
        }
        let src = if src.first() == Some(&b'#') {
            let end = src.iter().position(|&b| b == b'\n').unwrap_or(src.len());
            src[end..].to_vec()
        } else {
            src
        };
        let f = lua
            .load(src)
            .set_name(format!("@{path}"))
            .into_function()
            .map_err(load_error)?;
        let mut a = MultiValue::new();
        for s in args {
            a.push_back(Value::String(
                lua.create_string(s).map_err(|e| e.to_string())?,
            ));
        }
        run_one(f, a)?;
    }
    Ok(())
}

fn load_error(e: mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message,
        other => other.to_string(),
    }
}

/// `lua.c`'s `docall`: calls the function under the stack's other values
/// with [`msghandler`]; leaves nothing, or the error message.
///
/// # Safety
/// `l` holds the function and its arguments, and nothing else.
unsafe fn docall(l: *mut ffi::lua_State) {
    // SAFETY: `l` holds the function and its arguments, and nothing else (the
    // caller's contract: `exec_raw` pushed them for its closure, which mlua
    // runs inside a C function, with `LUA_MINSTACK` free slots). The handler
    // goes at 1, below the function; `lua_pcall` catches every error, leaving
    // the message where the function was, and the handler is removed: nothing
    // is owned here.
    unsafe {
        let nargs = ffi::lua_gettop(l) - 1;
        ffi::lua_pushcfunction(l, msghandler);
        ffi::lua_insert(l, 1);
        let status = ffi::lua_pcall(l, nargs, 0, 1);
        ffi::lua_remove(l, 1);
        if status == ffi::LUA_OK {
            ffi::lua_settop(l, 0);
        }
    }
}

/// `lua.c`'s `msghandler`: the message (an error object's `__tostring`,
/// or its type) with a traceback.
unsafe extern "C-unwind" fn msghandler(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this message handler on `l`, the thread where the
    // error happened, with the error object at 1, as `lua.c` calls its own:
    // converting a number in place, `__tostring` (any Lua code),
    // `lua_pushfstring` and `luaL_traceback` may raise (Lua then reports an
    // error in the handler) while nothing is owned here; `msg`, when not
    // null, points at a string on the stack, alive while it is used; type
    // names are static.
    unsafe {
        let mut msg = ffi::lua_tostring(l, 1);
        if msg.is_null() {
            if ffi::luaL_callmeta(l, 1, c"__tostring".as_ptr()) != 0
                && ffi::lua_type(l, -1) == ffi::LUA_TSTRING
            {
                return 1;
            }
            msg = ffi::lua_pushfstring(
                l,
                c"(error object is a %s value)".as_ptr(),
                ffi::luaL_typename(l, 1),
            );
        }
        ffi::luaL_traceback(l, l, msg, 1);
        1
    }
}
