//! `actor`: isolated Lua states that run in parallel (Rust half, C
//! functions; see [`crate::cfn`]).
//!
//! `actor.spawn(f_or_path, ...)` makes a new state with lugo's stdlib and
//! runs `f` (moved as bytecode: it may capture nothing but `_ENV`) or the
//! file at `path` as the new actor's first goroutine, with copies of the
//! arguments ([`crate::copy`]). The actor ends when that goroutine returns
//! or any of its goroutines raises; `handle:wait()` reports how: `true`
//! and copies of what a function body returned (kept by [`actor_return`],
//! its last act; a file's chunk is a program, whose results are not
//! kept), or `false` and the error. A result that cannot be copied is the
//! body's error (`cannot send a function at result1`).

use std::ffi::{c_int, c_void, CStr};
use std::sync::Arc;

use lugo_vm::{Actor, WaitReason};
use mlua::chunk::ChunkMode;
use mlua::{ffi, Function, Lua, MultiValue};

use crate::cfn::{
    actor, check, expected, fill, guard, me, new_box, push, push_owned, push_str, raise,
    raise_if_wake_error, type_name, CFn, Closure, Ret, CANNOT_PARK,
};
use crate::copy::{push_portable, to_portable, ActorHandle};

unsafe extern "C-unwind" fn dump_writer(
    _l: *mut ffi::lua_State,
    p: *const c_void,
    sz: usize,
    ud: *mut c_void,
) -> c_int {
    // SAFETY: `lua_dump` in `body_arg` calls this writer with `ud`, the
    // address of the `Vec<u8>` passed there (alive, and used by nothing else,
    // until `lua_dump` returns), and `p` pointing at `sz` bytes of the dump
    // (`sz > 0`: ldump.c calls the writer for no empty block).
    unsafe {
        let out = &mut *(ud as *mut Vec<u8>);
        out.extend_from_slice(std::slice::from_raw_parts(p as *const u8, sz));
        0
    }
}

/// What the new actor runs.
enum Body {
    Bytecode(Vec<u8>),
    File(String),
}

/// The bytecode of the function at `idx`, to be moved to a new actor; a
/// C function, or one that captures anything but `_ENV`, is refused with
/// `actor.spawn`'s message. Inert.
///
/// # Safety
/// `l` is a valid state with a function at `idx` and a free stack slot.
unsafe fn dump_body(l: *mut ffi::lua_State, idx: c_int) -> Result<Vec<u8>, String> {
    // SAFETY: `l` is a valid state with a function at `idx` and a free slot
    // (the caller's contract). Upvalues are pushed and popped (inert); a name
    // is copied at once from its string (alive while the function is at
    // `idx`); `lua_dump` of a copy of the function calls `dump_writer` with
    // `code`, alive for the call, and raises nothing. `code` and a name are
    // owned across inert calls only.
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        if ffi::lua_iscfunction(l, idx) != 0 {
            return Err("actor.spawn: a C function cannot be moved to an actor".into());
        }
        let mut n = 1;
        loop {
            let name = ffi::lua_getupvalue(l, idx, n);
            if name.is_null() {
                break;
            }
            ffi::lua_pop(l, 1);
            let name = CStr::from_ptr(name).to_string_lossy().into_owned();
            if name != "_ENV" {
                return Err(format!(
                    "actor.spawn: the function captures '{name}'; only _ENV may be \
                     captured (pass values as arguments)"
                ));
            }
            n += 1;
        }
        let mut code: Vec<u8> = Vec::new();
        ffi::lua_pushvalue(l, idx);
        ffi::lua_dump(l, dump_writer, &mut code as *mut Vec<u8> as *mut c_void, 0);
        ffi::lua_pop(l, 1);
        Ok(code)
    }
}

unsafe fn body_arg(l: *mut ffi::lua_State) -> Result<Body, Ret> {
    // SAFETY: `l` is the running thread of `actor.spawn`'s closure, with its
    // argument at 1 and free slots (the caller's contract): `dump_body`'s
    // contract for a function; a path is copied from its string
    // (`to_display` converts nothing). Only inert calls.
    unsafe {
        match ffi::lua_type(l, 1) {
            ffi::LUA_TFUNCTION => dump_body(l, 1).map(Body::Bytecode).map_err(raise),
            ffi::LUA_TSTRING => Ok(Body::File(crate::cfn::to_display(l, 1))),
            _ => {
                let t = type_name(l, 1);
                Err(raise(format!(
                    "actor.spawn: function or file path expected, got {t}"
                )))
            }
        }
    }
}

/// The options table form, `actor.spawn{ f_or_path, memory = bytes }`:
/// replaces it with `f_or_path` at index 1; returns the memory limit.
/// Reads the table raw (no metamethod runs).
unsafe fn options_arg(l: *mut ffi::lua_State) -> Result<usize, Ret> {
    // SAFETY: `l` is the running thread of `actor.spawn`'s closure, with its
    // arguments on the stack (the caller's contract). `push_str` may raise
    // (out of memory) while nothing is owned; the options table is read raw
    // (no metamethod runs); the other calls are inert.
    unsafe {
        if ffi::lua_type(l, 1) != ffi::LUA_TTABLE {
            return Ok(0);
        }
        push_str(l, "memory");
        ffi::lua_rawget(l, 1);
        let limit = match ffi::lua_type(l, -1) {
            ffi::LUA_TNIL => 0,
            ffi::LUA_TNUMBER => {
                let mut isint = 0;
                let n = ffi::lua_tointegerx(l, -1, &mut isint);
                if isint == 0 || n <= 0 {
                    return Err(raise(
                        "actor.spawn: memory must be a positive integer (bytes)",
                    ));
                }
                n as usize
            }
            _ => {
                let t = type_name(l, -1);
                return Err(raise(format!(
                    "actor.spawn: memory must be a positive integer, got {t}"
                )));
            }
        };
        ffi::lua_pop(l, 1);
        ffi::lua_rawgeti(l, 1, 1);
        ffi::lua_replace(l, 1);
        Ok(limit)
    }
}

/// Copies the arguments at `first..=last` of `l` for a new actor, named
/// `arg1`, `arg2`... in errors, with `actor.spawn`'s messages. Inert.
///
/// # Safety
/// As [`to_portable`]'s.
unsafe fn copy_args(
    cl: Closure,
    l: *mut ffi::lua_State,
    first: c_int,
    last: c_int,
) -> Result<Vec<lugo_vm::portable::Portable>, String> {
    // SAFETY: `to_portable`'s contract is the caller's.
    unsafe {
        let mut args = Vec::new();
        for i in first..=last {
            match to_portable(cl, l, i, &format!("arg{}", i - first + 1)) {
                Ok(p) => args.push(p),
                Err(e) => return Err(format!("actor.spawn: {e}")),
            }
        }
        Ok(args)
    }
}

/// Starts a new actor for the host, as `actor.spawn(f, args...)` called
/// in `parent` (whose state is `lua`) does: `f` is moved as bytecode (it
/// may capture nothing but `_ENV`), the arguments are copied; the error
/// is `actor.spawn`'s message. Runs on a host thread, outside any
/// goroutine; it holds `lua`'s lock while it reads `f` and `args`.
pub(crate) fn spawn_for_host(
    lua: &Lua,
    parent: &Arc<Actor>,
    f: &Function,
    args: MultiValue,
) -> Result<Arc<Actor>, String> {
    let cl = Closure::of_state(lua).map_err(|e| e.to_string())?;
    let mut all = args;
    all.push_front(mlua::Value::Function(f.clone()));
    let mut moved = Err(String::new());
    // SAFETY: `exec_raw` runs the closure under the state's lock, inside a
    // protected call, with `f` at 1 and the arguments above it, the only
    // values on its stack: a thread of the state whose upvalues `cl` holds
    // (`Closure::of_state`), alive while the runtime is. `dump_body` and
    // `copy_args` make inert calls only, so nothing owned is skipped by a
    // raise; `moved` outlives the call. The closure empties its stack
    // (`lua_settop`, inert: no to-be-closed value): no results.
    let done = unsafe {
        lua.exec_raw::<()>(all, |l| {
            let top = ffi::lua_gettop(l);
            moved = dump_body(l, 1).and_then(|code| Ok((code, copy_args(cl, l, 2, top)?)));
            ffi::lua_settop(l, 0);
        })
    };
    done.map_err(|e| e.to_string())?;
    let (code, args) = moved?;
    start(parent, Body::Bytecode(code), args, 0).map_err(|e| format!("actor.spawn: {e}"))
}

/// Makes the actor and starts its first goroutine.
fn start(
    parent: &Arc<Actor>,
    body: Body,
    args: Vec<lugo_vm::portable::Portable>,
    memory: usize,
) -> Result<Arc<Actor>, String> {
    let rt = parent.runtime();
    let memory = if memory > 0 {
        memory
    } else {
        rt.actor_memory()
    };
    let child = rt.new_actor(Some(parent), memory).map_err(state_error)?;
    if let Body::Bytecode(_) = body {
        // Its first M opens it: the spawner pays for the state only.
        child.post_start(Box::new(move |child| {
            run_first(child.runtime(), child, body, args).map_err(|e| match e {
                e if e != NO_MEMORY => e,
                _ if memory > 0 => {
                    format!("not enough memory to start the actor (limit {memory} bytes)")
                }
                _ => "not enough memory to start the actor".to_string(),
            })
        }));
        return Ok(child);
    }
    // A file is read and compiled now: `actor.spawn` reports what is wrong
    // with it.
    match run_first(rt, &child, body, args) {
        Ok(()) => Ok(child),
        Err(e) => {
            // Never scheduled: its state goes now (it keeps its actor
            // alive, so nothing else would free it).
            child.discard();
            Err(e)
        }
    }
}

/// What a new actor's state could not be made or opened for.
const NO_MEMORY: &str = "not enough memory";

/// The message of a failure to make or open a new actor's state.
fn state_error(e: mlua::Error) -> String {
    match e {
        mlua::Error::MemoryError(_) => NO_MEMORY.to_string(),
        e => e.to_string(),
    }
}

/// Opens lugo in the new actor's state and starts its first goroutine.
fn run_first(
    rt: &lugo_vm::Runtime,
    child: &Arc<Actor>,
    body: Body,
    args: Vec<lugo_vm::portable::Portable>,
) -> Result<(), String> {
    let lua = child.lua();
    // The collector stays stopped until the first goroutine is made: a
    // step taken now would mark the whole new heap (Lua's first step after
    // a restart does a cycle's marking) for garbage that is not there; an
    // actor that allocates nothing (returns, or waits) never collects.
    let started = start_stopped(rt, lua, child, body, args);
    lua.gc_restart();
    started
}

/// As [`run_first`], with the state's collector stopped.
fn start_stopped(
    rt: &lugo_vm::Runtime,
    lua: &mlua::Lua,
    child: &Arc<Actor>,
    body: Body,
    args: Vec<lugo_vm::portable::Portable>,
) -> Result<(), String> {
    crate::open_stopped(lua, child).map_err(state_error)?;
    // A function's results are kept for `wait`; a file's are not: a file
    // is a program, whose chunk's return value `lua file.lua` ignores too
    // (a module-like file may return functions, which cannot be copied).
    let keep_results = matches!(body, Body::Bytecode(_));
    let f = match body {
        Body::Bytecode(code) => lua
            .load(&code[..])
            .set_mode(ChunkMode::Binary)
            .set_name("=actor")
            .into_function(),
        Body::File(_) if rt.is_sandbox() => {
            return Err("a sandboxed script cannot load a file".into())
        }
        Body::File(path) => {
            let src = std::fs::read(&path).map_err(|e| {
                let e = e.to_string();
                format!(
                    "cannot open {path}: {}",
                    e.split(" (os error").next().unwrap_or(&e)
                )
            })?;
            lua.load(src).set_name(format!("@{path}")).into_function()
        }
    }
    .map_err(|e| match e {
        mlua::Error::SyntaxError { message, .. } => message,
        e => e.to_string(),
    })?;
    // SAFETY: only this thread uses the new state (it is not scheduled
    // yet, or this is the M running it: `Actor::post_start`), through its
    // own stack; the values pushed are the results.
    let values: MultiValue = unsafe {
        lua.exec_raw((), |l| {
            for p in &args {
                push_portable(l, p);
            }
        })
    }
    .map_err(|e| e.to_string())?;
    // Under the state's lock, as `go` requires: once scheduled, the new
    // actor may be run by another M (a spawning M lets an idle one steal
    // it; a host thread puts it on the global queue). An actor's body is a
    // goroutine's: its stack starts small and grows as Lua's do (an idle
    // actor holds no main chunk's reserve, `go_main`).
    // A function body runs inside the prelude's `actor_main`, which keeps
    // what it returns (`actor_return`).
    let (f, values) = match keep_results {
        false => (f, values),
        true => {
            let main: Function = lua
                .named_registry_value(crate::ACTOR_MAIN_KEY)
                .map_err(|e| e.to_string())?;
            let mut args = MultiValue::from_vec(vec![mlua::Value::Function(f)]);
            args.extend(values);
            (main, args)
        }
    };
    lua.exec_raw_lua(|_| crate::go(lua, f, values))
        .map_err(|e| e.to_string())?;
    Ok(())
}

unsafe extern "C-unwind" fn actor_spawn(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The handle's box is
    // allocated (that may raise) while nothing is owned, and filled once: it
    // stays on the stack, above the arguments. The calls after it are inert:
    // `body_arg` (see there) and the copies of the arguments (`to_portable`,
    // with this function's state record); `start` makes and fills the new state,
    // which nothing else uses yet.
    unsafe {
        guard(l, || {
            let memory = match options_arg(l) {
                Ok(m) => m,
                Err(r) => return r,
            };
            let nargs = ffi::lua_gettop(l);
            // The handle's box first: allocating it may raise, and nothing
            // may be owned then (ffi rule 2).
            let handle = new_box::<ActorHandle>(l);
            let body = match body_arg(l) {
                Ok(b) => b,
                Err(r) => return r,
            };
            let args = match copy_args(Closure::of(l), l, 2, nargs) {
                Ok(a) => a,
                Err(e) => return raise(e),
            };
            match start(actor(l), body, args, memory) {
                Ok(child) => {
                    fill(handle, Arc::new(ActorHandle(child)));
                    Ret::N(1)
                }
                Err(e) => raise(format!("actor.spawn: {e}")),
            }
        })
    }
}

/// `actor_return(...)`: the last act of a spawned actor's body (the
/// prelude's `actor_main`): keeps copies of its results for `wait`.
unsafe extern "C-unwind" fn actor_return(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (made by `Registry`) on `l`, the
    // running thread, with the results as arguments; `guard` is its last
    // act. Copying reads them with inert calls (`to_portable`); the copies
    // are moved to the actor (plain Rust) before anything could raise, and
    // a refusal is returned for `guard` to raise once it is dropped.
    unsafe {
        guard(l, || {
            let cl = Closure::of(l);
            let n = ffi::lua_gettop(l);
            let mut values = Vec::with_capacity(n as usize);
            for i in 1..=n {
                match to_portable(cl, l, i, &format!("result{i}")) {
                    Ok(p) => values.push(p),
                    Err(e) => return raise(format!("actor: {e}")),
                }
            }
            actor(l).set_results(values);
            Ret::N(0)
        })
    }
}

unsafe extern "C-unwind" fn actor_self(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The box is allocated
    // before the new handle exists (`push`): nothing owned is alive across
    // the raising allocation.
    unsafe {
        guard(l, || {
            push(l, || Arc::new(ActorHandle(actor(l).clone())));
            Ret::N(1)
        })
    }
}

unsafe fn wait_body(l: *mut ffi::lua_State) -> Ret {
    // SAFETY: `l` is the running thread of `actor:wait`'s closure (made by
    // `Registry`), with the handle at 1 (the callers' contract, `actor_wait`
    // and `wait_k`). The handle is borrowed from argument 1, on the stack
    // throughout; an error's message is handed off (`push_owned`), so nothing
    // owned is alive across the raising push; `me` needs the running thread
    // of an actor owned by this M: Lua runs an actor's code on its M only.
    unsafe {
        let Some(h) = check::<ActorHandle>(l, 1) else {
            return expected(l, "actor:wait", "actor", 1);
        };
        loop {
            // Finished: ended, and its state closed (its memory given back).
            let result = h.0.result().filter(|_| h.0.finished());
            if result.is_some() {
                h.0.observe();
            }
            match result {
                Some(Ok(())) => {
                    ffi::lua_pushboolean(l, 1);
                    let Some(values) = h.0.results() else {
                        return Ret::N(1);
                    };
                    // Rebuilt under `protect`: `values` is the caller's,
                    // dropped after a raise as after a return.
                    let pushed = lugo_vm::ffi::protect(l, 0, |l| {
                        for p in values.iter() {
                            push_portable(l, p);
                        }
                        values.len() as c_int
                    });
                    return match pushed {
                        Ok(n) => Ret::N(1 + n),
                        Err(_) => Ret::Rethrow,
                    };
                }
                Some(Err(e)) => {
                    ffi::lua_pushboolean(l, 0);
                    push_owned(l, e);
                    return Ret::N(2);
                }
                None => {}
            }
            if Arc::ptr_eq(&h.0, actor(l)) {
                return raise("actor:wait: an actor cannot wait for itself");
            }
            let Some(g) = me(l, actor(l)) else {
                return raise(CANNOT_PARK);
            };
            if h.0.wait_end(g) {
                return Ret::ParkK(WaitReason::ActorWait, 0, wait_k);
            }
        }
    }
}

unsafe extern "C-unwind" fn wait_k(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation of `actor:wait` (a closure made by
    // `Registry`) on its thread, with the call's own stack, the handle at 1,
    // after a wake with no values, or an interrupt's error, raised first
    // with nothing owned; `guard` is its last act. That is
    // `wait_body`'s contract.
    unsafe {
        // Woken with no values (the stack is the call's own), or
        // interrupted.
        raise_if_wake_error(l);
        guard(l, || wait_body(l))
    }
}

unsafe extern "C-unwind" fn actor_wait(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. Only the handle stays
    // on the stack (`lua_settop`, inert), as `wait_body` requires.
    unsafe {
        guard(l, || {
            ffi::lua_settop(l, 1);
            wait_body(l)
        })
    }
}

unsafe extern "C-unwind" fn actor_id(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C function (put in place by `Registry`: it finds
    // its state's record, `Closure::of`) on `l`, the running thread, with its
    // arguments on the stack; `guard` is its last act. The handle is borrowed
    // from argument 1, on the stack throughout; pushing an integer is inert.
    unsafe {
        guard(l, || match check::<ActorHandle>(l, 1) {
            Some(h) => {
                ffi::lua_pushinteger(l, h.0.id as ffi::lua_Integer);
                Ret::N(1)
            }
            None => expected(l, "actor:id", "actor", 1),
        })
    }
}

/// The actor handle methods.
pub(crate) const METHODS: [(&CStr, CFn); 2] = [(c"wait", actor_wait), (c"id", actor_id)];

/// The functions the Lua half gets in `P`.
pub(crate) const FUNCTIONS: [(&CStr, CFn); 3] = [
    (c"actor_spawn", actor_spawn),
    (c"actor_self", actor_self),
    (c"actor_return", actor_return),
];
