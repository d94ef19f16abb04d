//! `runtime` and the spawning half of `go` (Rust half).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use lugo_vm::portable::{PValue, Portable};
use lugo_vm::sched::dump;
use lugo_vm::sched::MAX_PROCS;
use lugo_vm::wake::Msg;
use lugo_vm::Actor;
use mlua::{Lua, Table, Value};

use crate::{arg, integer_arg, raise, raw, ret, type_name};

pub(crate) fn register(lua: &Lua, actor: &Arc<Actor>, p: &Table) -> mlua::Result<()> {
    let a = actor.clone();
    p.set("id", lua.create_function(move |_, ()| Ok(a.current_id()))?)?;

    // os.exit: ends the runtime with the status; the host (the `lugo`
    // command: the process) decides what that means.
    let a = actor.clone();
    p.set(
        "exit",
        raw(lua, move |lua, args| {
            let code = match arg(&args, 0) {
                Value::Nil | Value::Boolean(true) => 0,
                Value::Boolean(false) => 1,
                v => match integer_arg(v).and_then(|n| i32::try_from(n).ok()) {
                    Some(n) => n,
                    None => {
                        let t = type_name(v);
                        return raise(format!(
                            "os.exit: status must be a boolean or an integer, got {t}"
                        ));
                    }
                },
            };
            // os.exit(code, close): as in Lua, the states are closed (their
            // finalizers run) only when asked.
            let close = !matches!(arg(&args, 1), Value::Nil | Value::Boolean(false));
            let rt = a.runtime();
            rt.set_close_at_exit(close);
            rt.finish(lugo_vm::Outcome::Exit(code));
            ret(lua, ())
        })?,
    )?;

    // `runtime.interrupt(id)`: goroutine `id` of this actor stops, running
    // or parked, at once (`Vm::interrupt`); false if this actor has no
    // such goroutine.
    let a = actor.clone();
    p.set(
        "interrupt",
        raw(lua, move |lua, args| match integer_arg(arg(&args, 0)) {
            Some(id) if id > 0 && a.has_goroutine(id as u64) => {
                a.runtime().interrupt(id as u64);
                ret(lua, true)
            }
            Some(id) if id > 0 => ret(lua, false),
            _ => raise(format!(
                "runtime.interrupt: id must be a positive integer, got {}",
                type_name(arg(&args, 0))
            )),
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "numgoroutine",
        lua.create_function(move |_, ()| Ok(a.runtime().numgoroutine()))?,
    )?;

    let a = actor.clone();
    p.set(
        "gomaxprocs",
        raw(lua, move |lua, args| {
            let rt = a.runtime();
            match arg(&args, 0) {
                Value::Nil => ret(lua, rt.gomaxprocs()),
                // The number of Ps is the host's: threads of its process.
                _ if rt.is_sandbox() => {
                    raise("runtime.gomaxprocs: a sandboxed script cannot change the number of Ps")
                }
                v => match integer_arg(v) {
                    Some(n) if n >= 1 && n as usize <= MAX_PROCS => {
                        ret(lua, rt.set_gomaxprocs(n as usize))
                    }
                    _ => raise(format!(
                        "runtime.gomaxprocs: n must be an integer from 1 to {MAX_PROCS}, got {}",
                        match v {
                            Value::Integer(_) | Value::Number(_) => "an out-of-range number",
                            other => type_name(other),
                        }
                    )),
                },
            }
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "gc",
        lua.create_function(move |lua, ()| {
            lua.gc_collect()?;
            a.count_user_gc();
            Ok(())
        })?,
    )?;

    // stack(all, traceback): the Lua half passes the caller's traceback.
    let a = actor.clone();
    p.set(
        "stack",
        lua.create_function(move |_, (all, tb): (bool, String)| {
            let id = a.current_id();
            if all {
                dump::dump_actor(&a, Some((id, &tb)))
            } else {
                Ok(format!(
                    "goroutine {id} [running]:\n{}",
                    dump::format_traceback(&tb, crate::FACE.hidden_chunk())
                ))
            }
        })?,
    )?;

    // `runtime.setlabel(key, value)`: labels the running goroutine (and
    // the goroutines it starts from now on).
    let a = actor.clone();
    p.set(
        "setlabel",
        raw(lua, move |lua, args| {
            let text = |i: usize, what: &str| match arg(&args, i) {
                Value::String(s) => Ok(s.to_string_lossy()),
                v => raise(format!(
                    "runtime.setlabel: {what} must be a string, got {}",
                    type_name(v)
                )),
            };
            let key = text(0, "key")?;
            let value = text(1, "value")?;
            if key.is_empty() {
                return raise("runtime.setlabel: key must not be empty");
            }
            a.set_label(a.current_id(), &key, &value);
            ret(lua, ())
        })?,
    )?;

    crate::leaks::register(lua, actor, p)?;

    // `runtime.goroutines()`: one record per goroutine of the program.
    let a = actor.clone();
    p.set(
        "goroutines",
        lua.create_function(move |lua, ()| {
            let hidden = crate::FACE.hidden_chunk();
            let recs = dump::records(&a);
            let t = lua.create_table_with_capacity(recs.len(), 0)?;
            for (i, r) in recs.iter().enumerate() {
                let g = lua.create_table()?;
                g.set("id", r.info.id)?;
                g.set("actor", r.actor)?;
                // The caller is `running` (its record says so while it runs).
                g.set("state", dump::state_word(r.info.status, r.info.reason))?;
                if r.info.status == lugo_vm::g::GStatus::Waiting {
                    g.set("waiting", r.waited)?;
                }
                if r.info.leaked {
                    g.set("leaked", true)?;
                }
                if let Some(labels) = &r.info.labels {
                    let lt = lua.create_table()?;
                    for (k, v) in labels.iter() {
                        lt.set(k.as_str(), v.as_str())?;
                    }
                    g.set("labels", lt)?;
                }
                if let Some(c) = &r.creator {
                    if c.parent != 0 {
                        g.set("parent", c.parent)?;
                    }
                    if !c.function.is_empty() && !dump::is_lugo_site(&c.function, hidden) {
                        g.set("func", c.function.as_str())?;
                        if !c.at.is_empty() {
                            g.set("created_at", c.at.as_str())?;
                        }
                    }
                }
                t.set(i + 1, g)?;
            }
            Ok(t)
        })?,
    )?;

    // `runtime.flightrecord(path)`: the flight recorder's last events,
    // written to `path` (the recorder runs with LUGO_DEBUG=flightrecorder=1).
    p.set(
        "flightrecord",
        raw(lua, move |lua, args| {
            let path = match arg(&args, 0) {
                Value::String(s) => s.to_string_lossy(),
                v => {
                    return raise(format!(
                        "runtime.flightrecord: path must be a string, got {}",
                        type_name(v)
                    ))
                }
            };
            if !lugo_vm::trace::on() {
                return raise(
                    "runtime.flightrecord: the flight recorder is off (LUGO_DEBUG=flightrecorder=1)",
                );
            }
            match lugo_vm::trace::write(std::path::Path::new(&path)) {
                Ok(()) => ret(lua, true),
                Err(e) => ret(lua, (Value::Nil, format!("{path}: {e}"))),
            }
        })?,
    )?;

    // `ask_dumps()`: every other live actor asked for its goroutine dump;
    // `{ {id = n, c = channel}, ... }` (the Lua half waits on each).
    let a = actor.clone();
    p.set(
        "ask_dumps",
        lua.create_function(move |lua, ()| {
            let t = lua.create_table()?;
            for other in a.runtime().actors().into_iter().filter(|o| o.id != a.id) {
                let ch = Arc::new(lugo_vm::chan::Chan::new_shared(1));
                let entry = lua.create_table()?;
                entry.set("id", other.id)?;
                entry.set("c", crate::chan::chan_value(lua, ch.clone())?)?;
                // Its M dumps between two of its goroutines' turns (never,
                // if it has ended: the Lua half waits a second at most).
                other.post_job(Box::new(move |other, _| {
                    let dump = dump::dump_actor(other, None)
                        .unwrap_or_else(|e| format!("(cannot dump actor {}: {e})\n", other.id));
                    let v = Portable::scalar(PValue::String(dump.into_bytes().into()));
                    ch.offer(Msg::Copied(Arc::new(v)));
                }));
                t.push(entry)?;
            }
            Ok(t)
        })?,
    )?;

    // `runtime.ps()`'s listing (the Lua half prints it).
    let a = actor.clone();
    p.set(
        "ps",
        lua.create_function(move |_, ()| {
            Ok(dump::ps_listing(
                &dump::records(&a),
                crate::FACE.hidden_chunk(),
            ))
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "stats",
        lua.create_function(move |lua, ()| {
            let rt = a.runtime();
            let s = rt.stats();
            let t = lua.create_table()?;
            t.set("goroutines", rt.numgoroutine())?;
            t.set("actors", rt.numactors())?;
            t.set("timers", rt.numtimers())?;
            t.set("procs", rt.gomaxprocs())?;
            t.set("preemptions", s.preemptions.load(Ordering::Relaxed))?;
            t.set("sysmon_ticks", s.sysmon_ticks.load(Ordering::Relaxed))?;
            t.set("handoffs", s.handoffs.load(Ordering::Relaxed))?;
            t.set("inline_calls", s.inline_calls.load(Ordering::Relaxed))?;
            t.set("leak_steps", s.leak_jobs.load(Ordering::Relaxed))?;
            t.set(
                "leak_pause_max",
                s.leak_job_max_ns.load(Ordering::Relaxed) as f64 / 1e9,
            )?;
            t.set(
                "leak_pause_last",
                s.leak_job_last_ns.load(Ordering::Relaxed) as f64 / 1e9,
            )?;
            t.set("gc_cycles", s.gc.full_cycles())?;
            let by = lua.create_table()?;
            by.set("user", s.gc.user.load(Ordering::Relaxed))?;
            by.set("periodic", s.gc.periodic.load(Ordering::Relaxed))?;
            by.set("limit", s.gc.limit.load(Ordering::Relaxed))?;
            by.set("idle_steps", s.gc.idle_steps.load(Ordering::Relaxed))?;
            t.set("gc", by)?;
            // What the actor's memory limit counts: its Lua heap and what
            // the runtime holds for it.
            let acct = a.account();
            t.set("memory", acct.used())?;
            t.set("memory_limit", acct.limit())?;
            Ok(t)
        })?,
    )?;
    Ok(())
}
