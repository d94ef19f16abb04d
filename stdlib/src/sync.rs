//! `sync`: wait groups and mutexes (Rust half; `once` is Lua only).

use std::sync::Arc;

use lugo_vm::sema::{Acquire, SemMutex, WaitGroup};
use lugo_vm::{Actor, WaitReason};
use mlua::{Lua, Table, UserData, Value};

use crate::chan::CANNOT_PARK;
use crate::{arg, integer_arg, park, raise, raw, ret, type_name, yieldable, Raise};

/// `sync.waitgroup()` as Lua holds it.
pub struct WaitGroupUd(WaitGroup);
impl UserData for WaitGroupUd {}

/// `sync.mutex()` as Lua holds it.
pub struct MutexUd(SemMutex);
impl UserData for MutexUd {}

fn ud_arg<T: 'static>(v: &Value, fname: &str, what: &str) -> Result<mlua::UserDataRef<T>, Raise> {
    if let Value::UserData(ud) = v {
        if let Ok(t) = ud.borrow::<T>() {
            return Ok(t);
        }
    }
    raise(format!("{fname}: {what} expected, got {}", type_name(v)))
}

pub(crate) fn register(lua: &Lua, actor: &Arc<Actor>, p: &Table) -> mlua::Result<()> {
    p.set(
        "wg_new",
        raw(lua, |lua, _| {
            ret(lua, lua.create_userdata(WaitGroupUd(WaitGroup::default()))?)
        })?,
    )?;
    p.set(
        "wg_add",
        raw(lua, |lua, args| {
            let wg = ud_arg::<WaitGroupUd>(arg(&args, 0), "waitgroup:add", "waitgroup")?;
            let n = match arg(&args, 1) {
                Value::Nil => 1,
                v => integer_arg(v).map_or_else(
                    || {
                        raise(format!(
                            "waitgroup:add: delta must be an integer, got {}",
                            type_name(v)
                        ))
                    },
                    Ok,
                )?,
            };
            wg.0.add(n).map_or_else(raise, |()| ret(lua, ()))
        })?,
    )?;
    p.set(
        "wg_done",
        raw(lua, |lua, args| {
            let wg = ud_arg::<WaitGroupUd>(arg(&args, 0), "waitgroup:done", "waitgroup")?;
            wg.0.add(-1).map_or_else(raise, |()| ret(lua, ()))
        })?,
    )?;
    let a = actor.clone();
    p.set(
        "wg_wait",
        raw(lua, move |lua, args| {
            let wg = ud_arg::<WaitGroupUd>(arg(&args, 0), "waitgroup:wait", "waitgroup")?;
            match wg.0.wait(|| yieldable(&args, 1).then(|| a.current())) {
                Acquire::Park => park(lua, WaitReason::Semacquire),
                Acquire::Done => ret(lua, ()),
                Acquire::CannotPark => raise(CANNOT_PARK),
            }
        })?,
    )?;

    p.set(
        "mutex_new",
        raw(lua, |lua, _| {
            ret(lua, lua.create_userdata(MutexUd(SemMutex::default()))?)
        })?,
    )?;
    let a = actor.clone();
    p.set(
        "mutex_lock",
        raw(lua, move |lua, args| {
            let m = ud_arg::<MutexUd>(arg(&args, 0), "mutex:lock", "mutex")?;
            match m.0.lock(|| yieldable(&args, 1).then(|| a.current())) {
                Acquire::Park => park(lua, WaitReason::Semacquire),
                Acquire::Done => ret(lua, ()),
                Acquire::CannotPark => raise(CANNOT_PARK),
            }
        })?,
    )?;
    p.set(
        "mutex_trylock",
        raw(lua, |lua, args| {
            let m = ud_arg::<MutexUd>(arg(&args, 0), "mutex:trylock", "mutex")?;
            ret(lua, m.0.try_lock())
        })?,
    )?;
    p.set(
        "mutex_unlock",
        raw(lua, |lua, args| {
            let m = ud_arg::<MutexUd>(arg(&args, 0), "mutex:unlock", "mutex")?;
            m.0.unlock().map_or_else(raise, |()| ret(lua, ()))
        })?,
    )?;
    Ok(())
}
