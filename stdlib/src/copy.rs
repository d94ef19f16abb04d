//! Copying values between actors (DESIGN.md section 4): a Lua value of
//! one state becomes a [`Portable`] and is rebuilt in another. Cycles and
//! shared sub-tables are kept, metatables dropped, channels shared;
//! functions, coroutines and other userdata are refused with the path of
//! the offending part (`cannot send function at msg.handler`).

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::Arc;

use lugo_vm::ffi::{number_at, push_msg, Number};
use lugo_vm::portable::{PValue, Portable};
use lugo_vm::{Chan, Msg};
use mlua::ffi;

use crate::actor::ActorHandle;
use crate::cfn::{arc, check, push, to_display};

/// Copies the value at `idx`; `name` names it in error messages.
///
/// # Safety
/// `l` is a valid state running one of the stdlib's C closures (channels
/// are recognised by its metatable upvalue).
pub(crate) unsafe fn to_portable(
    l: *mut ffi::lua_State,
    idx: c_int,
    name: &str,
) -> Result<Portable, String> {
    let idx = ffi::lua_absindex(l, idx);
    let mut c = Copier {
        seen: HashMap::new(),
        tables: Vec::new(),
    };
    let root = c.value(l, idx, name)?;
    Ok(Portable {
        root,
        tables: c.tables,
    })
}

struct Copier {
    seen: HashMap<*const c_void, usize>,
    tables: Vec<Vec<(PValue, PValue)>>,
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Copier {
    unsafe fn value(
        &mut self,
        l: *mut ffi::lua_State,
        idx: c_int,
        path: &str,
    ) -> Result<PValue, String> {
        Ok(match ffi::lua_type(l, idx) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => PValue::Nil,
            ffi::LUA_TBOOLEAN => PValue::Boolean(ffi::lua_toboolean(l, idx) != 0),
            ffi::LUA_TNUMBER => match number_at(l, idx) {
                Number::Integer(i) => PValue::Integer(i),
                Number::Float(n) => PValue::Number(n),
            },
            ffi::LUA_TSTRING => {
                let mut len = 0usize;
                let p = ffi::lua_tolstring(l, idx, &mut len);
                PValue::String(std::slice::from_raw_parts(p as *const u8, len).into())
            }
            ffi::LUA_TTABLE => self.table(l, idx, path)?,
            ffi::LUA_TUSERDATA => {
                if let Some(ch) = arc::<Chan>(l, idx) {
                    share(l, &ch);
                    PValue::Chan(ch)
                } else if let Some(h) = check::<ActorHandle>(l, idx) {
                    PValue::Actor(h.0.clone())
                } else {
                    return Err(format!("cannot send userdata at {path}"));
                }
            }
            ffi::LUA_TFUNCTION => return Err(format!("cannot send function at {path}")),
            ffi::LUA_TTHREAD => return Err(format!("cannot send coroutine at {path}")),
            _ => return Err(format!("cannot send userdata at {path}")),
        })
    }

    unsafe fn table(
        &mut self,
        l: *mut ffi::lua_State,
        idx: c_int,
        path: &str,
    ) -> Result<PValue, String> {
        let p = ffi::lua_topointer(l, idx);
        if let Some(&i) = self.seen.get(&p) {
            return Ok(PValue::Table(i));
        }
        if ffi::lua_checkstack(l, 4) == 0 {
            return Err(format!("value too deep at {path}"));
        }
        let i = self.tables.len();
        self.tables.push(Vec::new());
        self.seen.insert(p, i);
        let mut entries = Vec::new();
        ffi::lua_pushnil(l);
        while ffi::lua_next(l, idx) != 0 {
            let top = ffi::lua_gettop(l);
            let (k, v) = (top - 1, top);
            let kpath = match ffi::lua_type(l, k) {
                ffi::LUA_TSTRING => {
                    let s = to_display(l, k);
                    if is_ident(&s) {
                        format!("{path}.{s}")
                    } else {
                        format!("{path}[{s:?}]")
                    }
                }
                ffi::LUA_TNUMBER => {
                    // A copy: lua_tolstring on the key itself would break lua_next.
                    ffi::lua_pushvalue(l, k);
                    let s = to_display(l, -1);
                    ffi::lua_pop(l, 1);
                    format!("{path}[{s}]")
                }
                _ => format!("{path}[?]"),
            };
            let r = self
                .value(l, k, &format!("{kpath} (a key)"))
                .and_then(|key| Ok((key, self.value(l, v, &kpath)?)));
            match r {
                Ok(kv) => entries.push(kv),
                Err(e) => {
                    ffi::lua_pop(l, 2);
                    return Err(e);
                }
            }
            ffi::lua_pop(l, 1);
        }
        self.tables[i] = entries;
        Ok(PValue::Table(i))
    }
}

/// A channel about to reach another actor becomes shared; the values it
/// holds (references into this actor's state) become copies. A value that
/// cannot be copied (a function left in the buffer) becomes nil.
unsafe fn share(l: *mut ffi::lua_State, ch: &Chan) {
    if ch.is_shared() {
        return;
    }
    ch.share(|m| match m {
        Msg::Slot(_) => {
            push_msg(l, m);
            let p = to_portable(l, -1, "msg");
            ffi::lua_pop(l, 1);
            p.map(|p| Msg::Copied(Arc::new(p))).unwrap_or(Msg::Nil)
        }
        m => m,
    });
}

/// Pushes the value `p` rebuilt in `l`.
///
/// # Safety
/// `l` is a valid state of an actor owned by the calling M, with lugo's
/// stdlib opened (the channel metatable exists).
pub(crate) unsafe fn push_portable(l: *mut ffi::lua_State, p: &Portable) {
    ffi::luaL_checkstack(l, 6, std::ptr::null());
    if p.tables.is_empty() {
        push_value(l, &p.root, 0);
        return;
    }
    // The common message: one flat table. No scratch table needed.
    if let (PValue::Table(0), [entries]) = (&p.root, &p.tables[..]) {
        if !entries
            .iter()
            .any(|(k, v)| matches!(k, PValue::Table(_)) || matches!(v, PValue::Table(_)))
        {
            let narr = entries
                .iter()
                .filter(|(k, _)| matches!(k, PValue::Integer(_)))
                .count();
            ffi::lua_createtable(l, narr as c_int, (entries.len() - narr) as c_int);
            for (k, v) in entries {
                push_value(l, k, 0);
                push_value(l, v, 0);
                ffi::lua_rawset(l, -3);
            }
            return;
        }
    }
    // Every table first (index -> table in a scratch table), then fill
    // them: references, cycles included, resolve through the scratch.
    ffi::lua_createtable(l, p.tables.len() as c_int, 0);
    let scratch = ffi::lua_gettop(l);
    for (i, entries) in p.tables.iter().enumerate() {
        ffi::lua_createtable(l, 0, entries.len() as c_int);
        ffi::lua_rawseti(l, scratch, i as ffi::lua_Integer + 1);
    }
    for (i, entries) in p.tables.iter().enumerate() {
        ffi::lua_rawgeti(l, scratch, i as ffi::lua_Integer + 1);
        let t = ffi::lua_gettop(l);
        for (k, v) in entries {
            push_value(l, k, scratch);
            push_value(l, v, scratch);
            if ffi::lua_type(l, -2) == ffi::LUA_TNIL {
                ffi::lua_pop(l, 2);
                continue;
            }
            ffi::lua_rawset(l, t);
        }
        ffi::lua_pop(l, 1);
    }
    push_value(l, &p.root, scratch);
    ffi::lua_remove(l, scratch);
}

unsafe fn push_value(l: *mut ffi::lua_State, v: &PValue, scratch: c_int) {
    match v {
        PValue::Nil => ffi::lua_pushnil(l),
        PValue::Boolean(b) => ffi::lua_pushboolean(l, *b as c_int),
        PValue::Integer(i) => ffi::lua_pushinteger(l, *i),
        PValue::Number(n) => ffi::lua_pushnumber(l, *n),
        PValue::String(s) => {
            ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len());
        }
        PValue::Table(i) => {
            ffi::lua_rawgeti(l, scratch, *i as ffi::lua_Integer + 1);
        }
        PValue::Chan(ch) => push(l, Arc::clone(ch)),
        PValue::Actor(a) => push(l, Arc::new(ActorHandle(Arc::clone(a)))),
    }
}
