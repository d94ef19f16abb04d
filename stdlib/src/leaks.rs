//! `runtime.leaks()` and `runtime.reclaim()`: leaked goroutines as Lua
//! sees them (the check itself is `lugo_vm::leak` and
//! `lugo_vm::sched::leaks`).

use std::sync::Arc;

use lugo_vm::sched::dump;
use lugo_vm::sched::leaks::Leak;
use lugo_vm::Actor;
use mlua::{Lua, Table};

/// One leaked goroutine as `runtime.leaks()` returns it.
fn record(lua: &Lua, l: &Leak) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set("id", l.gid)?;
    t.set("actor", l.actor)?;
    t.set(
        "state",
        dump::state_word(lugo_vm::g::GStatus::Waiting, l.reason),
    )?;
    t.set("waiting", l.waited)?;
    t.set("stack", l.stack.as_str())?;
    if !l.created_by.is_empty() {
        t.set("created_by", l.created_by.trim_end())?;
    }
    if let Some(w) = &l.waiting_on {
        t.set("waiting_on", w.as_str())?;
    }
    if let Some(labels) = &l.labels {
        let lt = lua.create_table()?;
        for (k, v) in labels.iter() {
            lt.set(k.as_str(), v.as_str())?;
        }
        t.set("labels", lt)?;
    }
    Ok(t)
}

/// The records of `leaks`, in id order.
fn records(lua: &Lua, leaks: &[Leak]) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(leaks.len(), 0)?;
    for (i, l) in leaks.iter().enumerate() {
        t.set(i + 1, record(lua, l)?)?;
    }
    Ok(t)
}

pub(crate) fn register(lua: &Lua, actor: &Arc<Actor>, p: &Table) -> mlua::Result<()> {
    // `runtime.leaks()`: the goroutines nothing that can run can ever wake.
    let a = actor.clone();
    p.set(
        "leaks",
        lua.create_function(move |lua, ()| {
            // SAFETY: a C function of `a`'s running goroutine.
            let leaks = unsafe { a.runtime().leaks_from(&a) };
            records(lua, &leaks)
        })?,
    )?;
    // `runtime.reclaim()`: ends the leaked goroutines (their `<close>`
    // handlers run); their records.
    let a = actor.clone();
    p.set(
        "reclaim",
        lua.create_function(move |lua, ()| {
            let rt = a.runtime();
            // SAFETY: as above.
            let leaks = unsafe { rt.leaks_from(&a) };
            for l in &leaks {
                rt.reclaim(l);
            }
            records(lua, &leaks)
        })?,
    )?;
    Ok(())
}
