//! lugo-stdlib: the Lua-facing modules `go`, `chan`, `time`, `sync` and
//! `runtime` (API.md), and lugo's versions of the `coroutine` functions.
//!
//! Each module has a Rust half (this crate's modules) and a Lua half
//! (`prelude.lua`, chunk `[lugo]`, hidden from tracebacks). The Lua half
//! receives the Rust functions in a table `P` and builds the globals.
//!
//! Rust functions come in two kinds:
//! - the hot ones (channel operations, `select`, `go`, `time.sleep`, the
//!   `sync` methods) are raw C functions (`cfn`): they park by yielding
//!   from C and raise Lua string errors themselves;
//! - the rest are mlua callbacks made by `raw`: they return their
//!   results, or `SCHED, kind` (park), or `ERR, message` (raise at the
//!   caller's level), and the Lua half's `call` acts on it.
//!
//! Either way every error a script sees is a plain string that names the
//! function (`chan: capacity must be a non-negative integer, got ...`).

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

mod actor;
mod blocking;
mod cfn;
mod chan;
mod context;
mod copy;
mod coroutine;
mod describe;
mod hooks;
pub mod host;
mod leaks;
mod net;
mod print;
mod runtime;
mod sync;
mod time;

use std::sync::Arc;

use lugo_vm::park;
use lugo_vm::{Actor, HostKind};
use mlua::{ffi, Function, IntoLuaMulti, Lua, MultiValue, Table, Value};

const PRELUDE: &str = include_str!("prelude.lua");

/// Takes from a sandboxed state what untrusted code must not reach.
const SANDBOX: &str = include_str!("sandbox.lua");

/// Why a raw function did not return its results.
pub(crate) enum Raise {
    /// The caller's mistake: raised by the Lua half as a string error.
    Msg(String),
    /// A failure of the Lua state itself (out of memory).
    Lua(mlua::Error),
}

impl From<mlua::Error> for Raise {
    fn from(e: mlua::Error) -> Raise {
        Raise::Lua(e)
    }
}

pub(crate) type RawResult = Result<MultiValue, Raise>;

/// A caller's-mistake error.
pub(crate) fn raise<T>(msg: impl Into<String>) -> Result<T, Raise> {
    Err(Raise::Msg(msg.into()))
}

/// Results of a raw function.
pub(crate) fn ret(lua: &Lua, v: impl IntoLuaMulti) -> RawResult {
    Ok(v.into_lua_multi(lua)?)
}

/// Makes a raw function: `f`'s `Raise::Msg` becomes `ERR, message`, and
/// so does a memory error (Lua's message, not mlua's with its traceback).
pub(crate) fn raw<F>(lua: &Lua, f: F) -> mlua::Result<Function>
where
    F: Fn(&Lua, MultiValue) -> RawResult + Send + 'static,
{
    lua.create_function(move |lua, args: MultiValue| match f(lua, args) {
        Ok(r) => Ok(r),
        Err(Raise::Msg(m)) => (park::err(), m).into_lua_multi(lua),
        Err(Raise::Lua(mlua::Error::MemoryError(_))) => {
            (park::err(), "not enough memory").into_lua_multi(lua)
        }
        Err(Raise::Lua(e)) => Err(e),
    })
}

/// Lua's name for the type of `v`.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Boolean(_) => "boolean",
        Value::LightUserData(_) | Value::UserData(_) => "userdata",
        Value::Integer(_) | Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Table(_) => "table",
        Value::Function(_) => "function",
        Value::Thread(_) => "thread",
        _ => "value",
    }
}

/// A number argument (integers and floats).
pub(crate) fn number_arg(v: &Value, what: &str) -> Result<f64, Raise> {
    match v {
        Value::Integer(i) => Ok(*i as f64),
        Value::Number(n) => Ok(*n),
        other => raise(format!("{what} must be a number, got {}", type_name(other))),
    }
}

/// An integer argument (a float with an exact integer value is accepted,
/// as `lua_tointeger` does).
pub(crate) fn integer_arg(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.2e18 => Some(*n as i64),
        _ => None,
    }
}

/// Argument `i` (0-based) of `args`, or nil.
pub(crate) fn arg(args: &MultiValue, i: usize) -> &Value {
    args.get(i).unwrap_or(&Value::Nil)
}

/// lugo's Lua face, for the runtime's `Config::face`: copied values are
/// rebuilt with this crate's userdata, and the prelude's chunk (`[lugo]`)
/// is hidden from goroutine tracebacks.
pub static FACE: lugo_vm::ffi::Face = lugo_vm::ffi::Face {
    push_copied: copy::push_portable,
    hidden_source: "=[lugo]",
    describe_key: DESCRIBE_KEY,
    shared_of: cfn::shared_of,
};

/// Installs the lugo modules in `lua`, the state of `actor`.
pub fn open(lua: &Lua, actor: &Arc<Actor>) -> mlua::Result<()> {
    // Everything made here lives as long as the state: collecting while
    // making it is wasted work (actors are spawned often).
    lua.gc_stop();
    let r = open_stopped(lua, actor);
    lua.gc_restart();
    r
}

/// As [`open`], in a state whose collector is stopped (the caller
/// restarts it).
pub(crate) fn open_stopped(lua: &Lua, actor: &Arc<Actor>) -> mlua::Result<()> {
    if !std::ptr::eq(actor.runtime().face(), &FACE) {
        return Err(mlua::Error::runtime(
            "lugo_stdlib::open: the runtime was not built with lugo_stdlib::FACE (Config::face)",
        ));
    }
    open_modules(lua, actor)
}

fn open_modules(lua: &Lua, actor: &Arc<Actor>) -> mlua::Result<()> {
    let p = lua.create_table_with_capacity(0, 128)?;
    p.set("SCHED", park::sched())?;
    p.set("ERR", park::err())?;
    p.set("KIND_GOSCHED", park::KIND_GOSCHED)?;
    p.set("KIND_EXIT", park::KIND_EXIT)?;
    p.set("KIND_PANIC", park::KIND_PANIC)?;
    // C functions: first every boxed type, then every closure.
    let mut reg = cfn::Registry::new(lua, actor)?;
    p.set(
        "chan_methods",
        reg.add_type::<lugo_vm::Chan>(lua, &chan::METHODS)?,
    )?;
    reg.add_type::<lugo_vm::sema::WaitGroup>(lua, &sync::WG_METHODS)?;
    reg.add_type::<lugo_vm::sema::SemMutex>(lua, &sync::MUTEX_METHODS)?;
    // A socket's kinds, each with its methods, and the `__index` that
    // names another kind's method used on it.
    let mut kinds = Vec::with_capacity(net::KINDS.len());
    for (kind, (methods, lacks)) in net::KINDS.into_iter().enumerate() {
        let table = match kind {
            0 => reg.add_type::<net::NetSock>(lua, methods)?,
            k => reg.add_kind::<net::NetSock>(lua, k, methods)?,
        };
        let mt = lua.create_table()?;
        table.set_metatable(Some(mt.clone()))?;
        kinds.push((mt, lacks));
    }
    reg.add_type::<copy::ActorHandle>(lua, &actor::METHODS)?;
    reg.add_type::<context::Ctx>(lua, &context::METHODS)?;
    reg.add_type::<lugo_vm::sema::RwMutex>(lua, &sync::RWMUTEX_METHODS)?;
    reg.add_type::<lugo_vm::sema::Semaphore>(lua, &sync::SEMAPHORE_METHODS)?;
    for (mt, lacks) in kinds {
        reg.fill(lua, &mt, &[(c"__index", lacks)])?;
    }
    for fns in [
        &chan::FUNCTIONS[..],
        &sync::FUNCTIONS,
        &time::FUNCTIONS,
        &coroutine::FUNCTIONS,
        &net::FUNCTIONS,
        &context::FUNCTIONS,
        &actor::FUNCTIONS,
        &blocking::FUNCTIONS,
        &describe::FUNCTIONS,
    ] {
        reg.fill(lua, &p, fns)?;
    }
    // SAFETY: pushes one C function, returned as the result.
    let print: Function = unsafe { lua.exec_raw((), |l| ffi::lua_pushcfunction(l, print::print))? };
    lua.globals().set("print", print)?;
    blocking::install(lua)?;
    time::register(lua, actor, &p)?;
    runtime::register(lua, actor, &p)?;
    p.set("taskdone", host::task_done(lua)?)?;
    let exports: Table = prelude(lua)?.call(p)?;
    // lugo's coroutine library, in place of Lua's (the prelude has kept
    // Lua's own `yield` for the scheduler's requests).
    let co: Table = lua.globals().get("coroutine")?;
    reg.fill(lua, &co, &coroutine::LIBRARY)?;
    reg.fill(lua, &lua.globals(), &coroutine::GLOBALS)?;
    // SAFETY: pushes Lua's own `load` as the upvalue of lugo's, returned
    // as the result.
    let load: Function = unsafe {
        lua.exec_raw((), |l| {
            ffi::lua_getglobal(l, c"load".as_ptr());
            ffi::lua_pushcclosure(l, coroutine::LOAD, 1);
        })?
    };
    lua.globals().set("load", load)?;
    // `debug.gethook` and `debug.sethook` that do not show lugo's hooks
    // (the sandbox below takes `debug` away).
    hooks::install(lua)?;
    actor.set_task_fn(exports.get("run_task")?);
    lua.set_named_registry_value(GO_KEY, exports.get::<Function>("go")?)?;
    lua.set_named_registry_value(DESCRIBE_KEY, exports.get::<Function>("describe")?)?;
    lua.set_named_registry_value(ACTOR_MAIN_KEY, exports.get::<Function>("actor_main")?)?;
    for (key, name) in [
        (chan::RECV_CTX, "recv_ctx"),
        (chan::SEND_CTX, "send_ctx"),
        (time::SLEEP_CTX, "sleep_ctx"),
        (sync::WAIT_CTX, "wait_ctx"),
        (sync::LOCK_CTX, "lock_ctx"),
        (sync::ACQUIRE_CTX, "acquire_ctx"),
    ] {
        let key = key.to_str().expect("an ASCII key");
        lua.set_named_registry_value(key, exports.get::<Function>(name)?)?;
    }
    let task_key = host::TASK_KEY.to_str().expect("an ASCII key");
    lua.set_named_registry_value(task_key, exports.get::<Function>("task")?)?;
    let rt = actor.runtime();
    set_default_paths(lua)?;
    if rt.is_sandbox() {
        lua.load(SANDBOX).set_name("=[lugo sandbox]").exec()?;
    }
    // The host's functions, after the sandbox: the host chose to give them.
    // Their failures reach Lua as plain strings, `name: message`: each is
    // a raw function (`ERR, message`) behind a Lua wrapper that raises.
    for h in rt.host_functions() {
        let f = h.f.clone();
        let name = h.name.clone();
        let raw_f = raw(lua, move |lua, args| {
            f(lua, args).map_err(|e| Raise::Msg(host_error(&name, &e)))
        })?;
        let wrapper = match h.kind {
            HostKind::Plain => "plain",
            HostKind::Blocking => "blocks",
            HostKind::Answered => "answered",
        };
        let func: Function = exports
            .get::<Function>(wrapper)?
            .call((h.name.as_str(), raw_f))?;
        lua.globals().set(h.name.as_str(), func)?;
    }
    Ok(())
}

/// A host function's failure as Lua sees it: `name: message`, without
/// mlua's decorations (`runtime error:`, a traceback) or a second prefix.
fn host_error(name: &str, e: &mlua::Error) -> String {
    let msg = plain_message(e);
    let prefix = format!("{name}: ");
    if msg.starts_with(&prefix) {
        msg
    } else {
        prefix + &msg
    }
}

/// The message at the heart of an mlua error.
fn plain_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => m.clone(),
        mlua::Error::MemoryError(_) => "not enough memory".into(),
        mlua::Error::CallbackError { cause, .. } => plain_message(cause),
        mlua::Error::WithContext { cause, .. } => plain_message(cause),
        mlua::Error::ExternalError(e) => e.to_string(),
        e => e.to_string(),
    }
}

/// Where `require` looks by default, as Debian's `lua5.4` has it (the
/// vendored Lua knows only `/usr/local`): Debian's Lua 5.4 modules
/// (`lua-lpeg`, `lua-cjson`: C modules in the multiarch folder, Lua ones
/// in `/usr/share/lua/5.4`) load as they do under `lua5.4`. A path set in
/// the environment (`LUA_CPATH_5_4`, `LUA_CPATH`, and the same for
/// `LUA_PATH`) stays as Lua made it.
fn set_default_paths(lua: &Lua) -> mlua::Result<()> {
    let env_set = |name: &str| {
        std::env::var_os(format!("{name}_5_4"))
            .or(std::env::var_os(name))
            .is_some()
    };
    let package: Table = lua.globals().get("package")?;
    if !env_set("LUA_CPATH") {
        let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
        package.set(
            "cpath",
            format!(
                "/usr/local/lib/lua/5.4/?.so;/usr/lib/{multiarch}/lua/5.4/?.so;\
                 /usr/lib/lua/5.4/?.so;/usr/local/lib/lua/5.4/loadall.so;./?.so"
            ),
        )?;
    }
    if !env_set("LUA_PATH") {
        package.set(
            "path",
            "/usr/local/share/lua/5.4/?.lua;/usr/local/share/lua/5.4/?/init.lua;\
             /usr/local/lib/lua/5.4/?.lua;/usr/local/lib/lua/5.4/?/init.lua;\
             /usr/share/lua/5.4/?.lua;/usr/share/lua/5.4/?/init.lua;./?.lua;./?/init.lua",
        )?;
    }
    Ok(())
}

/// The prelude's function in `lua`. It is compiled once per process and
/// loaded as stripped bytecode in every state (actors are spawned often).
fn prelude(lua: &Lua) -> mlua::Result<Function> {
    static BYTECODE: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let code = match BYTECODE.get() {
        Some(code) => code,
        None => {
            let f = lua
                .load(PRELUDE)
                .set_name(FACE.hidden_source)
                .into_function()?;
            // Stripped: no line numbers or local names to load for every
            // state (its frames are hidden anyway), with the face's source
            // name put back, which hides them.
            BYTECODE.get_or_init(|| with_source(f.dump(true), FACE.hidden_source))
        }
    };
    lua.load(&code[..])
        .set_mode(mlua::chunk::ChunkMode::Binary)
        .set_name(FACE.hidden_source)
        .into_function()
}

/// Where a Lua 5.4 dump gives its main function's source: after the
/// header (signature 4, version, format, LUAC_DATA 6, three sizes, the
/// test integer and number 8 each: 31 bytes) and the upvalue count.
const DUMP_SOURCE_AT: usize = 32;

/// A stripped dump with `source` as its main function's source name
/// (which its nested functions inherit when it is loaded). Lua 5.4.8
/// strips the source too, and a chunk without one is `=?` whatever name
/// it is loaded with: frames that tracebacks could not tell from a
/// script's. Left as it is if the dump is not laid out as expected.
fn with_source(mut code: Vec<u8>, source: &str) -> Vec<u8> {
    // An empty string is its size 0 as a one-byte varint: 0x80. A string
    // of n < 127 bytes is n + 1 with the same end mark, then its bytes.
    if code.get(DUMP_SOURCE_AT) != Some(&0x80) || source.len() >= 126 {
        return code;
    }
    let mut s = vec![0x80 | (source.len() as u8 + 1)];
    s.extend_from_slice(source.as_bytes());
    code.splice(DUMP_SOURCE_AT..=DUMP_SOURCE_AT, s);
    code
}

/// Registry key of lugo's own `go` (the global may be replaced by a script).
const GO_KEY: &str = "lugo.go";
/// Registry key of `describe` (the REPL shows lugo's values with it).
const DESCRIBE_KEY: &str = "lugo.describe";

/// What the REPL shows of one of lugo's own values (`chan(cap 0, len 0,
/// open)`, `actor 2 (running)`, a socket's addresses, a context's state);
/// `None` for any other value.
pub fn describe(lua: &Lua, v: &Value) -> mlua::Result<Option<String>> {
    if !matches!(v, Value::UserData(_) | Value::LightUserData(_)) {
        return Ok(None);
    }
    let f: Function = lua.named_registry_value(DESCRIBE_KEY)?;
    f.call(v.clone())
}
/// Where the prelude's `actor_main` is kept (a spawned actor's body runs in it).
pub(crate) const ACTOR_MAIN_KEY: &str = "lugo.actor_main";

/// Starts `f(args...)` as a goroutine of `lua`'s actor; returns its id.
pub fn go(lua: &Lua, f: Function, args: MultiValue) -> mlua::Result<u64> {
    let go: Function = lua.named_registry_value(GO_KEY)?;
    let mut a = MultiValue::from_vec(vec![Value::Function(f)]);
    a.extend(args);
    go.call(a)
}

/// Lua stack slots a main chunk starts with (a goroutine starts with 40,
/// as any Lua thread; a main chunk often needs more at once).
const MAIN_STACK: std::ffi::c_int = 200;

/// Starts `f(args...)` as the main goroutine of `actor` (a program's main
/// chunk, an actor's body): as [`go`], with the stack room of a main
/// thread. The caller holds the state.
pub fn go_main(lua: &Lua, actor: &Actor, f: Function, args: MultiValue) -> mlua::Result<u64> {
    let gid = go(lua, f, args)?;
    actor.reserve_stack(gid, MAIN_STACK);
    Ok(gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stripped_dump_keeps_the_source_it_is_given() {
        let lua = Lua::new();
        let f = lua
            .load("local function g() error('here') end g()")
            .set_name("=[face]")
            .into_function()
            .expect("compiled");
        let code = with_source(f.dump(true), "=[face]");
        let g = lua
            .load(&code[..])
            .set_mode(mlua::chunk::ChunkMode::Binary)
            .into_function()
            .expect("loaded");
        // The nested function's frame is named by the source given.
        let e = g.call::<()>(()).expect_err("raised").to_string();
        assert!(e.contains("\t[face]: in function <[face]:1>"), "{e}");
        assert!(!e.contains("?:"), "{e}");
        // Stripped as before: no line information.
        assert!(code.len() < f.dump(false).len());
    }
}
