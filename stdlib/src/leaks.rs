//! `runtime.leaks()` and `runtime.reclaim()`: leaked goroutines as Lua
//! sees them (the check itself is `lugo_vm::leak` and
//! `lugo_vm::sched::leaks`).
//!
//! The calling goroutine parks while the check runs (the prelude receives
//! its records on a channel), so its own actor's probe runs between its
//! other goroutines' turns as every other actor's does: a check pauses no
//! actor for longer than one of its probe's steps. The check runs on a
//! thread of its own, which sends the records when it is done; the caller
//! is a root of the check (it is waiting for the answer).

use std::sync::Arc;

use lugo_vm::endpoint::Endpoint;
use lugo_vm::mem::Charge;
use lugo_vm::portable::{PValue, Portable};
use lugo_vm::sched::dump;
use lugo_vm::sched::leaks::Leak;
use lugo_vm::wake::Msg;
use lugo_vm::Actor;
use mlua::{Lua, Table};

/// The records of `leaks` as one copied value: a list of tables.
fn records(leaks: &[Leak]) -> Portable {
    fn s(v: &str) -> PValue {
        PValue::String(v.as_bytes().into())
    }
    let mut tables: Vec<Vec<(PValue, PValue)>> = vec![Vec::with_capacity(leaks.len())];
    for (i, l) in leaks.iter().enumerate() {
        let mut t = vec![
            (s("id"), PValue::Integer(l.gid as i64)),
            (s("actor"), PValue::Integer(l.actor as i64)),
            (
                s("state"),
                s(dump::state_word(lugo_vm::g::GStatus::Waiting, l.reason)),
            ),
            (s("waiting"), PValue::Integer(l.waited.into())),
            (s("stack"), s(&l.stack)),
        ];
        if !l.created_by.is_empty() {
            t.push((s("created_by"), s(l.created_by.trim_end())));
        }
        if let Some(w) = &l.waiting_on {
            t.push((s("waiting_on"), s(w)));
        }
        if let Some(labels) = &l.labels {
            let lt = labels.iter().map(|(k, v)| (s(k), s(v))).collect();
            tables.push(lt);
            t.push((s("labels"), PValue::Table(tables.len() - 1)));
        }
        tables.push(t);
        let at = tables.len() - 1;
        tables[0].push((PValue::Integer(i as i64 + 1), PValue::Table(at)));
    }
    Portable {
        root: PValue::Table(0),
        tables,
        charge: Charge::NONE,
    }
}

/// Starts a check for the calling goroutine; the channel its records will
/// come on. `reclaim`: end what it finds.
fn start(lua: &Lua, actor: &Arc<Actor>, reclaim: bool) -> mlua::Result<mlua::Value> {
    let rt = actor.runtime().clone();
    let me = (actor.id, actor.current_id());
    let ep = Endpoint::new(&rt, 1);
    let ch = crate::chan::chan_value(lua, ep.chan().clone())?;
    std::thread::Builder::new()
        .name("lugo-leaks".into())
        .spawn(move || {
            let leaks = rt.leaks_for(Some(me));
            if reclaim {
                for l in &leaks {
                    rt.reclaim(l);
                }
            }
            // Room for it: a send on a buffered channel does not wait.
            let _ = ep.send(Msg::Copied(Arc::new(records(&leaks))), None);
        })
        .map_err(|e| mlua::Error::runtime(format!("runtime.leaks: cannot start the check: {e}")))?;
    Ok(ch)
}

pub(crate) fn register(lua: &Lua, actor: &Arc<Actor>, p: &Table) -> mlua::Result<()> {
    // The prelude's `runtime.leaks()` and `runtime.reclaim()` receive on
    // the channel these return.
    let a = actor.clone();
    p.set(
        "leaks_start",
        lua.create_function(move |lua, ()| start(lua, &a, false))?,
    )?;
    let a = actor.clone();
    p.set(
        "reclaim_start",
        lua.create_function(move |lua, ()| start(lua, &a, true))?,
    )?;
    Ok(())
}
