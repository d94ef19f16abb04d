//! `chan`: channels and `chan.select` (Rust half).

use std::sync::Arc;

use lugo_vm::chan::{RecvResult, SendResult};
use lugo_vm::select::{self, Case, SelectResult};
use lugo_vm::{Actor, Chan, Msg, WaitReason};
use mlua::{
    AnyUserData, Lua, MetaMethod, MultiValue, Table, UserData, UserDataFields, UserDataMethods,
    Value,
};

use crate::{arg, integer_arg, park, park2, raise, raw, raw2, ret, type_name, Raise, RawResult};

/// Registry key of the table of channel methods (filled by the prelude).
const METHODS: &str = "lugo.chan.methods";

/// A channel as Lua sees it.
pub struct ChanUd(pub Arc<Chan>);

impl UserData for ChanUd {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("chan: {:p}", Arc::as_ptr(&this.0)))
        });
    }

    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_meta_field_with("__index", |lua| lua.named_registry_value::<Table>(METHODS));
        f.add_meta_field("__name", "chan");
    }
}

/// The channel in `v`, or an error naming `fname`.
pub(crate) fn chan_arg(v: &Value, fname: &str) -> Result<Arc<Chan>, Raise> {
    if let Value::UserData(ud) = v {
        if let Ok(c) = ud.borrow::<ChanUd>() {
            return Ok(c.0.clone());
        }
    }
    raise(format!("{fname}: channel expected, got {}", type_name(v)))
}

/// A new channel userdata for `ch`.
pub(crate) fn chan_value(lua: &Lua, ch: Arc<Chan>) -> mlua::Result<AnyUserData> {
    lua.create_userdata(ChanUd(ch))
}

fn capacity(v: &Value) -> Result<usize, Raise> {
    match v {
        Value::Nil => Ok(0),
        v => match integer_arg(v) {
            Some(n) if n >= 0 => usize::try_from(n)
                .ok()
                .filter(|&n| n <= 1 << 32)
                .map_or_else(|| raise("chan: capacity too large"), Ok),
            _ => raise(format!(
                "chan: capacity must be a non-negative integer, got {}",
                match v {
                    Value::Integer(_) | Value::Number(_) => "a negative or fractional number",
                    other => type_name(other),
                }
            )),
        },
    }
}

pub(crate) fn register(lua: &Lua, actor: &Arc<Actor>, p: &Table) -> mlua::Result<()> {
    lua.set_named_registry_value(METHODS, lua.create_table()?)?;
    p.set("chan_methods", lua.named_registry_value::<Table>(METHODS)?)?;

    p.set(
        "chan_new",
        raw(lua, |lua, args| {
            let cap = capacity(arg(&args, 0))?;
            ret(lua, chan_value(lua, Arc::new(Chan::new(cap)))?)
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "send",
        raw2(lua, move |_, ch, v| {
            let ch = chan_arg(&ch, "ch:send")?;
            match ch.send(Msg::Lua(v), || a.current()) {
                SendResult::Sent => Ok((Value::Nil, Value::Nil)),
                SendResult::Park => park2(WaitReason::ChanSend),
                SendResult::Closed => raise(lugo_vm::chan::SEND_ON_CLOSED),
            }
        })?,
    )?;

    let a = actor.clone();
    p.set(
        "recv",
        raw2(lua, move |lua, ch, _| {
            let ch = chan_arg(&ch, "ch:recv")?;
            match ch.recv(|| a.current()) {
                RecvResult::Got(m, ok) => Ok((m.into_value(lua)?, Value::Boolean(ok))),
                RecvResult::Park => park2(WaitReason::ChanReceive),
            }
        })?,
    )?;

    p.set(
        "close",
        raw2(lua, |_, ch, _| {
            let ch = chan_arg(&ch, "ch:close")?;
            ch.close()
                .map_or_else(raise, |()| Ok((Value::Nil, Value::Nil)))
        })?,
    )?;
    p.set(
        "len",
        raw2(lua, |_, ch, _| {
            let n = chan_arg(&ch, "ch:len")?.len();
            Ok((Value::Integer(n as i64), Value::Nil))
        })?,
    )?;
    p.set(
        "cap",
        raw2(lua, |_, ch, _| {
            let n = chan_arg(&ch, "ch:cap")?.cap();
            Ok((Value::Integer(n as i64), Value::Nil))
        })?,
    )?;

    let a = actor.clone();
    p.set("select", raw(lua, move |lua, args| select(lua, &a, args))?)?;
    Ok(())
}

/// `chan.select(case, ...)`: parses the cases and runs the select.
fn select(lua: &Lua, actor: &Arc<Actor>, args: MultiValue) -> RawResult {
    let mut cases = Vec::with_capacity(args.len());
    let mut index = Vec::with_capacity(args.len());
    let mut default = None;
    for (i, v) in args.iter().enumerate() {
        let n = i + 1;
        let Value::Table(t) = v else {
            return raise(format!(
                "chan.select: case {n} must be a table, got {}",
                type_name(v)
            ));
        };
        let kind: Value = t.raw_get(1)?;
        let kind = match &kind {
            Value::String(s) => s.to_string_lossy(),
            _ => String::new(),
        };
        match kind.as_str() {
            "recv" => {
                let ch = chan_arg(&t.raw_get(2)?, &format!("chan.select: case {n}"))?;
                cases.push(Case::Recv(ch));
                index.push(n);
            }
            "send" => {
                let ch = chan_arg(&t.raw_get(2)?, &format!("chan.select: case {n}"))?;
                cases.push(Case::Send(ch, Msg::Lua(t.raw_get(3)?)));
                index.push(n);
            }
            "default" => {
                if default.is_some() {
                    return raise("chan.select: more than one default case");
                }
                default = Some(n);
            }
            _ => {
                return raise(format!(
                    "chan.select: case {n} must start with \"recv\", \"send\" or \"default\""
                ))
            }
        }
    }
    let reason = if cases.is_empty() {
        WaitReason::SelectNoCases
    } else {
        WaitReason::Select
    };
    // Case numbers in results are positions among all arguments, so the
    // default case may sit anywhere; the vm numbers only real cases.
    let to_arg = |case: usize| index[case - 1];
    match select::select(cases, default.is_none(), || actor.current()) {
        SelectResult::Ready { case, recv: None } => ret(lua, to_arg(case)),
        SelectResult::Ready {
            case,
            recv: Some((m, ok)),
        } => ret(lua, (to_arg(case), m.into_value(lua)?, ok)),
        SelectResult::SendClosed(_) => raise(lugo_vm::chan::SEND_ON_CLOSED),
        SelectResult::WouldBlock => ret(lua, default.expect("only a select with default gives up")),
        // Only a select without default parks, and then every argument is
        // a case: the vm's case numbers are the argument positions.
        SelectResult::Park => park(lua, reason),
    }
}
