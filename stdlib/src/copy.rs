//! Copying values between actors (DESIGN.md section 4): a Lua value of
//! one state becomes a [`Portable`] and is rebuilt in another. Cycles and
//! shared sub-tables are kept, metatables dropped, channels shared;
//! functions, coroutines and other userdata are refused with the path of
//! the offending part (`cannot send a function at msg.handler`).
//!
//! Copying out is inert (see `lugo_vm::ffi`): it reads the value with raw
//! accesses only, allocates nothing in Lua and runs no Lua code (no
//! metamethod, no finalizer), so a borrow of a channel or a lock held by
//! the caller is safe across it, and it cannot raise. Its cost is linear
//! in the size of the value: the path that names a refused part is made
//! only on error, from the keys on the Lua stack. A value nested deeper
//! than [`MAX_DEPTH`] tables is refused.
//!
//! Rebuilding ([`push_portable`]) allocates: it runs inside
//! `ffi::protect` only.

use std::collections::HashMap;
use std::ffi::{c_int, c_void, CStr};
use std::sync::Arc;

use lugo_vm::ffi::{number_at, values_id, Number};
use lugo_vm::mem::Charge;
use lugo_vm::portable::{Handle, PValue, Portable};
use lugo_vm::{Actor, Chan, Msg};
use mlua::ffi;

use crate::cfn::{fill, new_box_of, push, Closure, Raw, MT_ACTOR};
use crate::context::Ctx;
use crate::net::NetSock;
use lugo_vm::sema::{RwMutex, SemMutex, Semaphore, WaitGroup};

/// An actor as Lua holds it: a handle, shared (not copied) when it
/// crosses to another actor. Its methods are `crate::actor`'s.
pub struct ActorHandle(pub Arc<Actor>);

impl Raw for ActorHandle {
    const NAME: &'static CStr = c"lugo.actor";
    const SHORT: &'static str = "actor";
    const MAGIC: u64 = 0x6c75_676f_6163_746f;
    const MT_UPVALUE: c_int = MT_ACTOR;
}

/// How many tables deep a copied value may be (a deeper one is refused,
/// as JSON encoders refuse one: lua-cjson's default is 1000).
pub(crate) const MAX_DEPTH: usize = 1000;

/// Copies the value at `idx`; `name` names it in error messages
/// (`arg1`, `msg`). Inert.
///
/// # Safety
/// `l` is a valid thread of the state of `cl`, the stdlib closure that
/// copies (channels are recognised by its metatable upvalues).
pub(crate) unsafe fn to_portable(
    cl: Closure,
    l: *mut ffi::lua_State,
    idx: c_int,
    name: &str,
) -> Result<Portable, String> {
    // SAFETY: `l` is a valid thread of the state of `cl`, the stdlib closure
    // that copies (the caller's contract): `cl.actor()` is that state's
    // actor, alive, and the copy reads the value at `idx` with inert calls
    // only (`Copier::value`), then `message` pops what a refused copy left.
    unsafe {
        let idx = ffi::lua_absindex(l, idx);
        let mut c = Copier {
            seen: HashMap::new(),
            tables: Vec::new(),
            keys: Vec::new(),
            cl,
            charge: match cl.actor().account().charge(0) {
                Ok(c) => c,
                Err(_) => return Err("not enough memory".into()),
            },
            uncharged: 0,
        };
        match c.value(l, idx).and_then(|root| c.settle().map(|()| root)) {
            Ok(root) => Ok(Portable {
                root,
                tables: c.tables,
                charge: c.charge,
            }),
            Err(e) => Err(c.message(l, e, name)),
        }
    }
}

/// Bytes a copy counts for each key/value pair, and each table.
const ENTRY_BYTES: usize = std::mem::size_of::<(PValue, PValue)>();
const TABLE_BYTES: usize = std::mem::size_of::<Vec<(PValue, PValue)>>() + 32;
/// A copy charges its bytes to the actor in steps of this many.
const CHARGE_STEP: usize = 64 << 10;

/// Pushes a new box of the object `h` shares if it is a `T`; whether it
/// was one.
///
/// # Safety
/// As [`push_portable`].
unsafe fn push_if<T: Raw>(l: *mut ffi::lua_State, h: &Handle) -> bool {
    if h.get::<T>().is_none() {
        return false;
    }
    // SAFETY: the caller's contract is `push`'s; the new reference is
    // made after the allocation (`push`'s `make`).
    unsafe { push(l, || h.get::<T>().expect("checked")) };
    true
}

/// Pushes a new box of a shared object ([`PValue::Shared`]: the copier
/// makes one of these types only; anything else would be nil).
///
/// # Safety
/// As [`push_portable`].
unsafe fn push_shared(l: *mut ffi::lua_State, h: &Handle) {
    // SAFETY: the caller's contract is `push_if`'s; a nil push is inert.
    unsafe {
        let pushed = push_if::<WaitGroup>(l, h)
            || push_if::<SemMutex>(l, h)
            || push_if::<RwMutex>(l, h)
            || push_if::<Semaphore>(l, h)
            || push_if::<Ctx>(l, h);
        if !pushed {
            ffi::lua_pushnil(l);
        }
    }
}

/// The string field `key` of the metatable of the value at `idx`, read
/// raw (no metamethod runs), if there is one.
///
/// # Safety
/// `l` is a valid state with two free stack slots, where `key` is a short
/// string the state holds already (lugo's own metatables have the field).
unsafe fn meta_string(l: *mut ffi::lua_State, idx: c_int, key: &CStr) -> Option<String> {
    // SAFETY: `l` is a valid state with room for the metatable and its
    // field (the caller's contract); both are popped; a string field is
    // copied before it is. Inert calls only: `key` is interned already
    // (the caller's contract), so pushing it allocates nothing.
    unsafe {
        if ffi::lua_getmetatable(l, idx) == 0 {
            return None;
        }
        ffi::lua_pushstring(l, key.as_ptr());
        let found = match ffi::lua_rawget(l, -2) == ffi::LUA_TSTRING {
            true => Some(crate::cfn::to_display(l, -1)),
            false => None,
        };
        ffi::lua_pop(l, 2);
        found
    }
}

/// `a ticker`, `an actor`.
fn with_article(name: &str) -> String {
    match name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        true => format!("an {name}"),
        false => format!("a {name}"),
    }
}

/// How a refusal names the userdata at `idx`: by its metatable's
/// `__name` (`a FILE*`), else `a userdata`.
///
/// # Safety
/// As [`meta_string`] (lugo's metatables hold `__name`).
unsafe fn userdata_name(l: *mut ffi::lua_State, idx: c_int) -> String {
    // SAFETY: the caller's contract is `meta_string`'s, for `__name`.
    let name = unsafe { meta_string(l, idx, c"__name") };
    name.map_or_else(|| "a userdata".into(), |n| with_article(&n))
}

/// How a refusal names one of lugo's own objects made as a table (a
/// timer, a ticker: its metatable's `__lugo`), if the table at `idx` is
/// one.
///
/// # Safety
/// As [`meta_string`] (the prelude's metatables hold `__lugo`).
unsafe fn lugo_object(l: *mut ffi::lua_State, idx: c_int) -> Option<String> {
    // SAFETY: the caller's contract is `meta_string`'s, for `__lugo`.
    let name = unsafe { meta_string(l, idx, c"__lugo") };
    name.map(|n| with_article(&n))
}

/// What stopped a copy, before it is put in words.
enum Refusal {
    /// A value of this type at the current path (`a function`, `a
    /// ticker`: a userdata is named by its metatable's `__name`).
    Cannot(String),
    /// A key of this type (the path names the key's table).
    CannotKey(String),
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Past the memory limit of the actor copying.
    NoMemory,
    /// The Lua stack cannot grow.
    NoStack,
    /// A channel in the value holds something that cannot be copied.
    Channel(String),
}

struct Copier {
    seen: HashMap<*const c_void, usize>,
    tables: Vec<Vec<(PValue, PValue)>>,
    /// The stack index of the key being copied at each level of tables
    /// (`None`: the value is itself a key): the path, made on error.
    keys: Vec<Option<c_int>>,
    /// The closure copying: its actor (a channel it shares keeps its
    /// values for it) and the metatables of lugo's types.
    cl: Closure,
    /// The copy's bytes, charged to the actor copying.
    charge: Charge,
    /// Bytes counted but not charged yet.
    uncharged: usize,
}

fn is_ident(s: &[u8]) -> bool {
    matches!(s.first(), Some(c) if c.is_ascii_alphabetic() || *c == b'_')
        && s.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// The string at `idx` (it is one), borrowed from the Lua state.
unsafe fn str_at<'a>(l: *mut ffi::lua_State, idx: c_int) -> &'a [u8] {
    // SAFETY: the value at `idx` of the valid state `l` is a string (the
    // callers check its type first), so `lua_tolstring` converts nothing and
    // `p` points at its `len` bytes, alive while the string is on the stack;
    // the callers copy them at once.
    unsafe {
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, idx, &mut len);
        std::slice::from_raw_parts(p as *const u8, len)
    }
}

impl Copier {
    /// Counts `n` bytes of the copy, charging them a step at a time.
    fn count(&mut self, n: usize) -> Result<(), Refusal> {
        self.uncharged += n;
        if self.uncharged >= CHARGE_STEP {
            self.settle()?;
        }
        Ok(())
    }

    /// Charges what is counted.
    fn settle(&mut self) -> Result<(), Refusal> {
        let n = std::mem::take(&mut self.uncharged);
        self.charge.grow(n).map_err(|_| Refusal::NoMemory)
    }

    unsafe fn value(&mut self, l: *mut ffi::lua_State, idx: c_int) -> Result<PValue, Refusal> {
        // SAFETY: `l` is a valid thread of the state of `self.cl`, with the
        // value at `idx` (the contract of `to_portable`, and of `table`
        // below). Only inert calls: type tests, `number_at` of a number,
        // `str_at` of a string (copied at once), `Closure::arc` and
        // `Closure::check` of a userdata with `self.cl`'s metatables, and
        // `share` (inert); `table` recurses on a table.
        unsafe {
            Ok(match ffi::lua_type(l, idx) {
                ffi::LUA_TNIL | ffi::LUA_TNONE => PValue::Nil,
                ffi::LUA_TBOOLEAN => PValue::Boolean(ffi::lua_toboolean(l, idx) != 0),
                ffi::LUA_TNUMBER => match number_at(l, idx) {
                    Number::Integer(i) => PValue::Integer(i),
                    Number::Float(n) => PValue::Number(n),
                },
                ffi::LUA_TSTRING => {
                    let s = str_at(l, idx);
                    self.count(s.len())?;
                    PValue::String(s.into())
                }
                ffi::LUA_TTABLE => self.table(l, idx)?,
                ffi::LUA_TUSERDATA => {
                    // A shared object in a value in flight is a hand-out
                    // (`lugo_vm::leak`); a refused one only makes a check
                    // more careful.
                    if let Some((id, _)) = crate::cfn::shared_of(l, idx) {
                        lugo_vm::leak::note_handout(self.cl.actor(), id);
                    }
                    if let Some(ch) = self.cl.arc::<Chan>(l, idx) {
                        share(self.cl, l, &ch).map_err(Refusal::Channel)?;
                        PValue::Chan(Handle::new(ch))
                    } else if let Some(h) = self.cl.check::<ActorHandle>(l, idx) {
                        PValue::Actor(Handle::new(h.0.clone()))
                    } else if let Some(s) = self.cl.arc::<NetSock>(l, idx) {
                        // Moved, not copied, when it is received.
                        PValue::Moved(Handle::new(s))
                    } else if let Some(w) = self.cl.arc::<WaitGroup>(l, idx) {
                        PValue::Shared(Handle::new(w))
                    } else if let Some(m) = self.cl.arc::<SemMutex>(l, idx) {
                        PValue::Shared(Handle::new(m))
                    } else if let Some(c) = self.cl.arc::<Ctx>(l, idx) {
                        PValue::Shared(Handle::new(c))
                    } else if let Some(m) = self.cl.arc::<RwMutex>(l, idx) {
                        PValue::Shared(Handle::new(m))
                    } else if let Some(s) = self.cl.arc::<Semaphore>(l, idx) {
                        PValue::Shared(Handle::new(s))
                    } else {
                        return Err(Refusal::Cannot(userdata_name(l, idx)));
                    }
                }
                ffi::LUA_TFUNCTION => return Err(Refusal::Cannot("a function".into())),
                ffi::LUA_TTHREAD => return Err(Refusal::Cannot("a coroutine".into())),
                _ => return Err(Refusal::Cannot("a userdata".into())),
            })
        }
    }

    unsafe fn table(&mut self, l: *mut ffi::lua_State, idx: c_int) -> Result<PValue, Refusal> {
        // SAFETY: as `value`, `idx` being a table on `l`'s stack: `lua_next`
        // walks it raw (no metamethod) with room for the key and the value
        // (four slots checked); `value` reads them, and reads a string key
        // without converting it, so the walk goes on. Inert calls only; a
        // refused copy leaves its keys and values on the stack for `message`.
        unsafe {
            let p = ffi::lua_topointer(l, idx);
            if let Some(&i) = self.seen.get(&p) {
                return Ok(PValue::Table(i));
            }
            if let Some(name) = lugo_object(l, idx) {
                return Err(Refusal::Cannot(name));
            }
            if self.keys.len() >= MAX_DEPTH {
                return Err(Refusal::TooDeep);
            }
            if ffi::lua_checkstack(l, 4) == 0 {
                return Err(Refusal::NoStack);
            }
            self.count(TABLE_BYTES)?;
            let i = self.tables.len();
            self.tables.push(Vec::new());
            self.seen.insert(p, i);
            let mut entries = Vec::new();
            ffi::lua_pushnil(l);
            while ffi::lua_next(l, idx) != 0 {
                let top = ffi::lua_gettop(l);
                let (k, v) = (top - 1, top);
                self.keys.push(None);
                let key = self.value(l, k).map_err(|e| match e {
                    Refusal::Cannot(t) => Refusal::CannotKey(t),
                    e => e,
                });
                let kv = key.and_then(|key| {
                    *self.keys.last_mut().expect("pushed") = Some(k);
                    Ok((key, self.value(l, v)?))
                });
                match kv.and_then(|kv| self.count(ENTRY_BYTES).map(|()| kv)) {
                    Ok(kv) => entries.push(kv),
                    // Key and value stay on the stack: the path is made from
                    // them. The caller pops everything.
                    Err(e) => return Err(e),
                }
                self.keys.pop();
                ffi::lua_pop(l, 1);
            }
            self.tables[i] = entries;
            Ok(PValue::Table(i))
        }
    }

    /// The path of the value where the copy stopped, `name.a[2]["x y"]`:
    /// the keys are still on the stack. Pops what the copy left there.
    unsafe fn path(&self, l: *mut ffi::lua_State, name: &str) -> String {
        // SAFETY: `l` holds the keys of a stopped copy at the indices in
        // `self.keys` (the contract of `message`, the only caller); each is
        // read by its type (inert; a string key is copied at once).
        unsafe {
            const SHOWN: usize = 12;
            let keys = &self.keys;
            let mut out = String::from(name);
            for (n, &k) in keys.iter().enumerate() {
                if keys.len() > 2 * SHOWN && n == SHOWN {
                    out.push_str(&format!("...({} more levels)...", keys.len() - 2 * SHOWN));
                }
                if keys.len() > 2 * SHOWN && n >= SHOWN && n < keys.len() - SHOWN {
                    continue;
                }
                let Some(k) = k else {
                    // Inside a table used as a key.
                    out.push_str("[?]");
                    continue;
                };
                match ffi::lua_type(l, k) {
                    ffi::LUA_TSTRING => {
                        let s = str_at(l, k);
                        if is_ident(s) {
                            out.push('.');
                            out.push_str(&String::from_utf8_lossy(s));
                        } else {
                            out.push_str(&format!("[{:?}]", String::from_utf8_lossy(s)));
                        }
                    }
                    ffi::LUA_TNUMBER => match number_at(l, k) {
                        Number::Integer(i) => out.push_str(&format!("[{i}]")),
                        Number::Float(f) => out.push_str(&format!("[{f}]")),
                    },
                    ffi::LUA_TBOOLEAN => {
                        out.push_str(&format!("[{}]", ffi::lua_toboolean(l, k) != 0));
                    }
                    _ => out.push_str("[?]"),
                }
            }
            out
        }
    }

    unsafe fn message(&self, l: *mut ffi::lua_State, e: Refusal, name: &str) -> String {
        // SAFETY: `l` is the thread the copy ran on, with what the stopped
        // copy left on top (the contract of `to_portable`, the only caller):
        // `path` reads the keys, then `lua_settop` pops them (inert: no
        // to-be-closed variable is there).
        unsafe {
            let top = ffi::lua_gettop(l);
            let path = self.path(l, name);
            let msg = match e {
                Refusal::Cannot(t) => format!("cannot send {t} at {path}"),
                Refusal::CannotKey(t) => format!("cannot send {t} at {path} (a key)"),
                Refusal::TooDeep => {
                    format!("value too deep at {path} (more than {MAX_DEPTH} nested tables)")
                }
                Refusal::NoStack => format!("value too deep at {path} (Lua stack overflow)"),
                Refusal::NoMemory => "not enough memory".to_string(),
                Refusal::Channel(e) => format!("cannot send channel at {path}: {e}"),
            };
            // Everything the copy left: each level's key and value.
            let left = 2 * self.keys.len() as c_int;
            ffi::lua_settop(l, top - left.min(top));
            msg
        }
    }
}

/// A channel about to reach another actor becomes shared; the values it
/// holds (references into this actor's state) are kept for this actor and
/// copied for the others. If one cannot be copied, the channel stays as
/// it was and the sending fails.
unsafe fn share(cl: Closure, l: *mut ffi::lua_State, ch: &Chan) -> Result<(), String> {
    // SAFETY: `l` is a valid thread of the state of `cl` (the contract of
    // `Copier::value`, the only caller), whose actor `cl.actor()` is. The
    // closure pushes a slot's value from this state's values table without
    // freeing the slot (it stays the channel's), copies it (`to_portable`,
    // inert) and pops both: inert calls only, as the channel's lock requires,
    // with two free slots (a C function starts with `LUA_MINSTACK`; inside a
    // table, `table` checked four and uses two).
    unsafe {
        if ch.is_shared() {
            return Ok(());
        }
        ch.share(cl.actor(), values_id(l), |m| {
            // Inert: the slot's value is pushed (without freeing the slot:
            // the kept value owns it), copied and popped.
            let Msg::Slot(r) = m else {
                unreachable!("only slots are copied")
            };
            lugo_vm::ffi::push_values(l);
            ffi::lua_rawgeti(l, -1, *r as ffi::lua_Integer);
            let p = to_portable(cl, l, -1, "value");
            ffi::lua_pop(l, 2);
            p.map_err(|e| {
                format!("its buffer holds a value of this actor that cannot be copied ({e})")
            })
        })
    }
}

/// Pushes the value `p` rebuilt in `l`. Allocates: call it inside
/// `ffi::protect` (it is the `ffi::CopiedPusher`).
///
/// # Safety
/// `l` is a valid state of an actor owned by the calling M, with lugo's
/// stdlib opened (the channel metatable exists), that may raise.
pub(crate) unsafe fn push_portable(l: *mut ffi::lua_State, p: &Portable) {
    // SAFETY: `l` is a valid state of an actor owned by the calling M, with
    // lugo's stdlib opened (the box metatables exist), that may raise: the
    // callers run this inside a protected call (`ffi::protect`, or `exec_raw`
    // for a new actor's arguments). Only borrows of `p` are alive here, so
    // allocating (which may raise or run finalizers) skips nothing;
    // `luaL_checkstack` makes room for the six slots used at most (scratch,
    // table, key, value, and a box with its metatable).
    unsafe {
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
}

unsafe fn push_value(l: *mut ffi::lua_State, v: &PValue, scratch: c_int) {
    // SAFETY: the contract of `push_portable`, the only caller: `l` may raise
    // (inside a protected call), has lugo's box metatables and room for two
    // values, and `scratch`, when a table is referred to, is the index of the
    // scratch table that holds it. A string is pushed from bytes borrowed
    // from the `Portable`, nothing owned; a box is allocated before its `Arc`
    // exists (`push`).
    unsafe {
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
            // The userdata exists before the new reference does (ffi rule 2).
            PValue::Chan(h) => push(l, || h.get::<Chan>().expect("a channel's handle")),
            PValue::Actor(h) => push(l, || {
                Arc::new(ActorHandle(h.get::<Actor>().expect("an actor's handle")))
            }),
            // Every actor that receives it shares it.
            PValue::Shared(h) => push_shared(l, h),
            // The receiving actor takes the socket (`NetSock::move_to`).
            PValue::Moved(h) => {
                // The box is of the socket's kind (its methods); the
                // reference read for it is dropped before the allocation.
                let kind = h.get::<NetSock>().expect("a socket's handle").kind();
                let b = new_box_of::<NetSock>(l, kind);
                let s = h.get::<NetSock>().expect("a socket's handle");
                fill(b, s.move_to(Closure::of(l).actor()));
            }
        }
    }
}
