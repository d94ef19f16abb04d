//! What the `lugo` crate needs from the stdlib to serve an embedding host:
//! starting a goroutine the host waits for (a task), starting an actor
//! ([`spawn_actor`], in Rust: no goroutine of the host's actor runs), and
//! handing a host-held channel to Lua.
//!
//! A task runs `f(args...)` under the prelude's `hostmain`, which passes
//! `xpcall`'s results to a `done` callback made here: the values, or the
//! error's message and traceback, become the task's
//! [`TaskEnd`]. The task is registered while this
//! thread holds the state's lock, so no M can run the goroutine before
//! the host waits for it (host invariant 1).

use std::sync::Arc;

use lugo_vm::host::{HostTask, TaskEnd};
use lugo_vm::preempt::Stop;
use lugo_vm::Actor;
use mlua::{Function, Lua, MultiValue, Value};

/// Registry key of the prelude's `task`.
pub(crate) const TASK_KEY: &std::ffi::CStr = c"lugo.task";

/// The `done` every task of a state ends with (the prelude's `task`
/// passes it to `taskmain`): `done(true, results...)` or `done(false,
/// message, traceback)` ends the running goroutine's task. One function
/// per state: the task is the one the host registered for the goroutine
/// that calls it.
pub(crate) fn task_done(lua: &Lua) -> mlua::Result<Function> {
    lua.create_function(|lua, results: MultiValue| {
        // Stopped by the CPU budget or the shutdown: the M ends the
        // runtime, or the actor, and the task with it.
        let stop = lugo_vm::preempt::current_slot().and_then(|s| s.pending_stop());
        if matches!(stop, Some(Stop::Budget | Stop::Shutdown)) {
            return Ok(());
        }
        let cl = crate::cfn::Closure::of_state(lua)?;
        // SAFETY: the closure's state is `lua`, alive while borrowed here.
        let actor = unsafe { cl.actor() };
        let mut it = results.into_iter();
        let end = match it.next() {
            Some(Value::Boolean(true)) => TaskEnd::Returned(it.collect()),
            _ => raised(it.next(), it.next()),
        };
        actor.runtime().end_task(actor.current_id(), end);
        Ok(())
    })
}

/// Starts `f(args...)` as a goroutine of `actor` (whose state is `lua`)
/// that the host waits for; its end arrives in the returned task.
pub fn start_task(
    lua: &Lua,
    actor: &Arc<Actor>,
    f: Function,
    args: MultiValue,
) -> mlua::Result<Arc<HostTask>> {
    let task = Arc::new(HostTask::default());
    let rt = actor.runtime();
    // The values go before the state's lock is let go (`exec_raw` drops
    // them under it): dropping one takes the lock, and once the goroutine
    // runs, its M may hold the lock for good (a goroutine spinning inside
    // a C call cannot be preempted, only stopped), so a drop after it
    // would block this thread, the one that could stop it (tests/stop.rs,
    // a hang). The task is registered under the lock too (invariant 1).
    // SAFETY: `exec_raw` runs the closure as a C function (protected) with
    // `f, args...` on its stack and room for three more; it pushes the
    // prelude's `task` under them and calls it (which may raise: nothing
    // owned is alive then), then reads the id it returns (inert).
    unsafe {
        lua.exec_raw::<()>((f, args), |l| {
            mlua::ffi::lua_getfield(l, mlua::ffi::LUA_REGISTRYINDEX, TASK_KEY.as_ptr());
            mlua::ffi::lua_insert(l, 1);
            mlua::ffi::lua_call(l, mlua::ffi::lua_gettop(l) - 1, 1);
            let gid = mlua::ffi::lua_tointeger(l, -1) as u64;
            mlua::ffi::lua_pop(l, 1);
            rt.add_task(gid, task.clone());
        })?;
    }
    Ok(task)
}

/// Starts a new actor running `f(args...)`, as `actor.spawn(f, ...)`
/// called by a goroutine of `parent` (whose state is `lua`) does: `f` may
/// capture nothing but `_ENV` (it is moved as bytecode), the arguments
/// are copied (channels shared), and the actor draws from `parent`'s
/// memory limit. The error is `actor.spawn`'s message
/// (`actor.spawn: the function captures 'x'; ...`). Call it from a host
/// thread: it takes `lua`'s lock while it reads `f` and `args`.
pub fn spawn_actor(
    lua: &Lua,
    parent: &Arc<Actor>,
    f: &Function,
    args: MultiValue,
) -> Result<Arc<Actor>, String> {
    crate::actor::spawn_for_host(lua, parent, f, args)
}

/// The end of a task that raised: its message and the Lua traceback
/// (the task's body, `taskmain`, passes both as strings).
fn raised(message: Option<Value>, traceback: Option<Value>) -> TaskEnd {
    let text = |v: Option<Value>| v.and_then(|v| v.to_string().ok()).unwrap_or_default();
    let (message, traceback) = (text(message), text(traceback));
    // Lua's traceback without lugo's own frames, in lua.c's layout.
    let frames = lugo_vm::sched::dump::format_traceback(&traceback, crate::FACE.hidden_chunk());
    let traceback = match frames.is_empty() {
        true => String::new(),
        false => format!("stack traceback:\n{}", frames.trim_end()),
    };
    TaskEnd::Raised { message, traceback }
}

pub use crate::chan::chan_value;

/// The runtime a state opened by `crate::open` belongs to.
pub fn runtime_of(lua: &Lua) -> mlua::Result<lugo_vm::Runtime> {
    let cl = crate::cfn::Closure::of_state(lua)?;
    // SAFETY: the closure's state is `lua`, alive while borrowed here.
    Ok(unsafe { cl.actor() }.runtime().clone())
}
