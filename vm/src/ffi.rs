//! Raw Lua C API: the one module of lugo-vm that touches `lua_State`.
//!
//! The hot paths (resuming a G, moving a value through a channel) bypass
//! mlua's safe API, which costs 100-200 ns per call in locking, reference
//! bookkeeping and conversions. Everything here runs on the M that owns the
//! actor whose state it touches (actor invariant 2).
//!
//! Values in flight. A Lua value sent on a channel is stored in the actor's
//! *values table* (a registry table) with `luaL_ref`, and travels as
//! [`Msg::Slot`], plain data. Whoever delivers it pushes it with
//! [`push_msg`], which also frees the slot. A `Msg::Slot` must be delivered
//! or released with [`release_msg`]; dropping it leaks the value until the
//! actor ends.
//!
//! # Soundness at the Lua boundary (DESIGN.md section 5b)
//!
//! A Lua API call may allocate (and so run a collection step, whose
//! finalizers are arbitrary Lua code), call a metamethod, raise (a
//! `longjmp` in the vendored C Lua, which skips Rust destructors) or
//! yield. By what they may do, the calls fall in classes, and each class
//! says what Rust may keep alive across a call of it:
//!
//! | class | examples | may | alive across it |
//! |---|---|---|---|
//! | inert | `lua_type`, `lua_to*` of non-numbers, `lua_push{nil,boolean,integer,number,lightuserdata,value}`, `lua_raw{get,geti,getp}`, `lua_settop`, `lua_xmove`, `lua_checkstack`, `luaL_unref`, `lua_getmetatable`, `lua_next` | nothing | anything |
//! | grows | `luaL_ref`, `lua_rawset{,i,p}` of a new key | raise "not enough memory" (an emergency collection runs no finalizer) | borrows; nothing with a destructor |
//! | allocates | `lua_pushlstring`, `lua_createtable`, `lua_newuserdatauv`, `lua_concat`, `luaL_where`, `luaL_traceback`, `lua_tolstring` of a number | raise, and run finalizers | borrows of values on the stack; no lock guard; nothing with a destructor |
//! | calls | `lua_call`, `lua_gettable` and `lua_setfield` on a value with a metatable, `luaL_tolstring` | run any Lua code, raise anything | as *allocates* |
//! | leaves | `lua_error`, `lua_yieldk` | never return to the caller | nothing with a destructor |
//!
//! The rules that follow, kept everywhere in lugo:
//! 1. No lock guard is held across a call that is not inert (a finalizer
//!    may take the same lock: a deadlock; a raise skips the unlock).
//! 2. No Rust value with a destructor is alive across a call that may
//!    raise or leave. Owned bytes are handed to a thread-local buffer
//!    before they are pushed ([`push_owned`]); several raising steps with
//!    owned values alive run inside [`protect`], a `lua_pcall` whose
//!    closure owns nothing; a C function raises only after its body's
//!    values are dropped (the stdlib's `guard`).
//! 3. A borrow of a userdata's Rust object lives only while the userdata
//!    is on the stack: lugo's `__gc` ignores calls that do not come from
//!    the collector (a script that reaches the metamethod cannot free an
//!    object still in use), and its metatables are protected
//!    (`__metatable`).
//! 4. The scheduler allocates in a Lua state only inside [`protect`]: an
//!    out-of-memory error (a memory-limited actor) becomes a Lua error,
//!    never an abort of the process. A copied value delivered to a parked
//!    goroutine is built on its actor's main thread under `protect` and
//!    moved over ([`resume`]).

use std::ffi::{c_int, c_void};
use std::ptr;

use mlua::ffi;

use crate::park;
use crate::preempt;
use crate::wake::{Msg, SelectSends, WaitReason, Wake};

/// Registry key of the values table (its address is the key).
static VALUES_KEY: u8 = 0;

/// A Lua thread (coroutine) by its raw state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LuaThread(pub *mut ffi::lua_State);

// SAFETY: a `LuaThread` is an address; it is only dereferenced (through the
// Lua C API) by the M that owns the actor the thread belongs to.
unsafe impl Send for LuaThread {}
// SAFETY: as above: sharing the address does not touch the state.
unsafe impl Sync for LuaThread {}

/// Prepares a new state: the values table, the runtime's [`Face`] (in
/// the registry, for [`push_copied`]), and a zero mark in the main
/// thread's extra space (new threads copy it from there). Returns the
/// state's main thread, where the scheduler builds values ([`resume`]).
pub fn init_state(lua: &mlua::Lua, face: &'static Face) -> mlua::Result<LuaThread> {
    // The extra space is LUA_EXTRASPACE (pointer-sized, aligned) bytes that
    // Lua reserves for the embedder and mlua does not use; `main` (maybe the
    // thread running the closure) is valid, `LUA_OK`, hooks allowed, as
    // `check_layout` expects. The face is `'static`, as long as the state.
    // SAFETY: `exec_raw` runs the closure under mlua's lock inside a
    // protected call; the two registry stores may raise (memory), the stack
    // is left balanced, and the closure owns nothing but a borrow of `main`.
    unsafe {
        let mut main = ptr::null_mut();
        lua.exec_raw::<()>((), |l| {
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, values_key());
            ffi::lua_pushlightuserdata(l, face as *const Face as *mut c_void);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, face_key());
            ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_MAINTHREAD);
            main = ffi::lua_tothread(l, -1);
            *(ffi::lua_getextraspace(main) as *mut usize) = 0;
            preempt::check_layout(main);
            ffi::lua_pop(l, 1);
        })?;
        Ok(LuaThread(main))
    }
}

/// The bridge to the Lua face: what the scheduler needs from the library
/// that gives Lua its API (`lugo-stdlib`), handed to the runtime when it
/// is built (`Config::face`) and kept in each state's registry. No
/// process global: two runtimes may have two faces.
#[derive(Clone, Copy, Debug)]
pub struct Face {
    /// Rebuilds a copied value ([`Msg::Copied`]) in a state: only the
    /// face knows its userdata (channels, actor handles).
    pub push_copied: CopiedPusher,
    /// The chunk name of the face's own Lua code as given to `load`
    /// (lugo's: `=[lugo]`; empty: none): its frames are left out of
    /// goroutine tracebacks, and a stop is raised after it, in the user's
    /// code.
    pub hidden_source: &'static str,
    /// The registry key of the face's `describe(v)` (a string naming one of
    /// its values, or nil; empty: none): dumps say with it what a parked
    /// goroutine waits on.
    pub describe_key: &'static str,
    /// Reads the box at an index: its shared object's address and strong
    /// count, if it is one (a channel, a lock, a context): what a leak
    /// check needs of the face's values ([`crate::leak`]).
    pub shared_of: SharedOf,
}

impl Face {
    /// How tracebacks name the face's chunk (`[lugo]`): the source
    /// without its `=`.
    pub fn hidden_chunk(&self) -> &'static str {
        self.hidden_source
            .strip_prefix('=')
            .unwrap_or(self.hidden_source)
    }

    /// No face: a runtime that runs plain Lua and copies no values
    /// between actors (a copied value cannot be rebuilt: an error).
    pub const NONE: Face = Face {
        push_copied: no_face,
        hidden_source: "",
        describe_key: "",
        shared_of: no_shared,
    };
}

/// Reads the value at an index: if it is a box of a shared object, the
/// object's address and strong count ([`Face::shared_of`]).
pub type SharedOf = unsafe fn(*mut ffi::lua_State, c_int) -> Option<(usize, usize)>;

/// [`Face::NONE`]'s reader of boxes: no value is a shared object.
///
/// # Safety
/// None needed: it reads nothing.
unsafe fn no_shared(_: *mut ffi::lua_State, _: c_int) -> Option<(usize, usize)> {
    None
}

/// [`Face::NONE`]'s pusher: raises.
///
/// # Safety
/// A [`CopiedPusher`]: called inside [`protect`] on a valid thread.
unsafe fn no_face(l: *mut ffi::lua_State, _: &crate::portable::Portable) {
    const MSG: &str = "lugo: this runtime has no Lua face to rebuild a copied value";
    // SAFETY: inside `protect` (the contract): the push and the raise are
    // caught there; nothing here has a destructor.
    unsafe {
        ffi::lua_pushlstring(l, MSG.as_ptr() as *const _, MSG.len());
        ffi::lua_error(l);
    }
}

/// The registry key of a state's [`Face`].
fn face_key() -> *const c_void {
    static KEY: u8 = 0;
    &KEY as *const u8 as *const c_void
}

/// The extra space of a thread: bit 0 marks a goroutine's own thread;
/// bits 8..16 say whether a user's coroutine is held by the scheduler
/// ([`Held`]): a scheduler request inside it was forwarded to its
/// goroutine's M, and no one but that goroutine may resume it.
const MARK_GOROUTINE: usize = 1;
const HELD_SHIFT: u32 = 8;
const HELD_MASK: usize = 0xff << HELD_SHIFT;
/// [`Held::Suspended`]'s code; a park's is its wait reason's code + 1.
const HELD_SUSPENDED: usize = 0xff;

/// Why the scheduler holds a user's coroutine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// A channel operation, sleep... inside it parked its goroutine.
    Park(WaitReason),
    /// It was preempted, or yielded the processor (`runtime.gosched`).
    Suspended,
}

impl Held {
    /// Lua's words for resuming or closing it.
    pub fn describe(self) -> String {
        match self {
            Held::Park(r) => format!("a coroutine parked in {}", r.as_str()),
            Held::Suspended => "a coroutine suspended by the scheduler".into(),
        }
    }
}

/// The mark word of `th`: its `LUA_EXTRASPACE` bytes, as a `usize`.
///
/// # Safety
/// `th` is a live thread.
#[inline]
unsafe fn mark(th: *mut ffi::lua_State) -> *mut usize {
    // SAFETY: `th` is a live thread (the caller's contract), and
    // `lua_getextraspace` is pointer arithmetic on it: the `LUA_EXTRASPACE`
    // bytes (one pointer's worth) in front of the `lua_State`, at the start
    // of the block Lua allocated for it (lstate.c's `LX`), so aligned for a
    // `usize`. Lua reserves them for the embedder; mlua does not use them.
    unsafe { ffi::lua_getextraspace(th) as *mut usize }
}

/// Marks `th` as a goroutine's own thread.
///
/// # Safety
/// `th` is a live thread of an actor owned by the calling M.
pub unsafe fn mark_goroutine(th: LuaThread) {
    // SAFETY: `th` is live (the caller's contract), so its mark word is
    // valid to read and write; only the M that owns its actor touches it
    // (the contract again), so no other thread reads or writes it now.
    unsafe { *mark(th.0) |= MARK_GOROUTINE };
}

/// Whether `th` is a goroutine's own thread.
///
/// # Safety
/// As [`mark_goroutine`].
#[inline]
pub unsafe fn is_goroutine(th: *mut ffi::lua_State) -> bool {
    // SAFETY: as in `mark_goroutine`: a live thread's mark word, read by
    // the M that owns its actor (the caller's contract).
    unsafe { *mark(th) & MARK_GOROUTINE != 0 }
}

/// Records that the scheduler holds the user's coroutine `th` (`Some`:
/// a request inside it was forwarded to its goroutine's M) or no longer
/// does (`None`).
///
/// # Safety
/// As [`mark_goroutine`].
#[inline]
pub unsafe fn set_held(th: *mut ffi::lua_State, held: Option<Held>) {
    let code = match held {
        None => 0,
        Some(Held::Park(r)) => r.code() as usize + 1,
        Some(Held::Suspended) => HELD_SUSPENDED,
    };
    // SAFETY: as in `mark_goroutine`: a live thread's mark word, read and
    // written by the M that owns its actor (the caller's contract).
    unsafe { *mark(th) = (*mark(th) & !HELD_MASK) | (code << HELD_SHIFT) };
}

/// Whether, and why, the scheduler holds the user's coroutine `th`.
///
/// # Safety
/// As [`mark_goroutine`].
#[inline]
pub unsafe fn held(th: *mut ffi::lua_State) -> Option<Held> {
    // SAFETY: as in `mark_goroutine`: a live thread's mark word, read by
    // the M that owns its actor (the caller's contract).
    let word = unsafe { *mark(th) };
    match (word & HELD_MASK) >> HELD_SHIFT {
        0 => None,
        HELD_SUSPENDED => Some(Held::Suspended),
        code => WaitReason::from_code(code as i64 - 1).map(Held::Park),
    }
}

fn values_key() -> *const c_void {
    &VALUES_KEY as *const u8 as *const c_void
}

/// Pushes the values table.
///
/// # Safety
/// `l` is a valid state (or thread) of an actor owned by the calling M, with
/// one free stack slot.
pub unsafe fn push_values(l: *mut ffi::lua_State) {
    // SAFETY: `l` is a valid thread with a free stack slot, on the M that
    // owns its actor (the caller's contract); `lua_rawgetp` on the registry
    // is inert (a raw read, one value pushed: the values table that
    // `init_state` stored, or nil in a state it did not prepare).
    unsafe { ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, values_key()) };
}

/// A Lua number with its subtype.
pub enum Number {
    /// An integer.
    Integer(i64),
    /// A float, also one with an integral value (7.0 stays a float).
    Float(f64),
}

/// The number at `idx` (`lua_isinteger` decides, not `lua_tointegerx`,
/// which would take 7.0 for 7).
///
/// # Safety
/// `l` is a valid state and the value at `idx` is a number.
pub unsafe fn number_at(l: *mut ffi::lua_State, idx: c_int) -> Number {
    // SAFETY: `l` is a valid state and `idx` holds a number (the caller's
    // contract); reading a number's subtype and value is inert.
    unsafe {
        if ffi::lua_isinteger(l, idx) != 0 {
            Number::Integer(ffi::lua_tointeger(l, idx))
        } else {
            Number::Float(ffi::lua_tonumber(l, idx))
        }
    }
}

/// Turns the value at `idx` into a message (stores it in the values table:
/// that may raise "not enough memory" when the table grows, so nothing
/// with a destructor may be alive in the caller).
///
/// # Safety
/// As [`push_values`], with a valid `idx` and four free stack slots (the
/// values table and the value's copy, and two for `luaL_ref`, the first
/// time it makes the table's free list); nothing with a destructor is
/// alive in the caller's frames up to the nearest protected call.
pub unsafe fn to_msg(l: *mut ffi::lua_State, idx: c_int) -> Msg {
    // SAFETY: `l` is a valid thread on the M that owns its actor, `idx` a
    // valid index and four stack slots free (the caller's contract, enough
    // for the values table, the copy and `luaL_ref`'s own two). Everything
    // here is inert but `luaL_ref`, which may raise "not enough memory"
    // when the values table grows: this frame owns nothing then (plain
    // integers), and the caller's frames nothing with a destructor (the
    // contract). The `Msg` is made after it returns.
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TNIL | ffi::LUA_TNONE => Msg::Nil,
            ffi::LUA_TBOOLEAN => Msg::Boolean(ffi::lua_toboolean(l, idx) != 0),
            ffi::LUA_TNUMBER => match number_at(l, idx) {
                Number::Integer(i) => Msg::Integer(i),
                Number::Float(n) => Msg::Number(n),
            },
            _ => {
                let idx = ffi::lua_absindex(l, idx);
                push_values(l);
                ffi::lua_pushvalue(l, idx);
                let r = ffi::luaL_ref(l, -2);
                ffi::lua_pop(l, 1);
                Msg::Slot(r)
            }
        }
    }
}

/// Pushes the value of `msg`, freeing its slot. A copied value is built
/// inside [`protect`]: `Err` when it could not be (out of memory), with
/// the error object pushed instead.
///
/// # Safety
/// As [`push_values`], with three free stack slots; for a `Copied` or
/// `Kept` message, `l` may run Lua code now (see [`protect`]).
pub unsafe fn push_msg(l: *mut ffi::lua_State, msg: Msg) -> Result<(), Raised> {
    // A `Msg::Slot` is delivered in the state that made it, and a `Kept`
    // slot is taken only when the values table is the sender's.
    // SAFETY: `l` is a thread of this M's actor with three free slots (the
    // values table, the value, `luaL_unref`'s), and may run Lua code for
    // `push_copied` (the caller's contract). Every call is inert but
    // `push_copied`'s, which builds inside `protect`: its raise is caught, so
    // `msg`, alive across it, is dropped as usual.
    unsafe {
        match msg {
            Msg::Nil => ffi::lua_pushnil(l),
            Msg::Boolean(b) => ffi::lua_pushboolean(l, b as c_int),
            Msg::Integer(i) => ffi::lua_pushinteger(l, i),
            Msg::Number(n) => ffi::lua_pushnumber(l, n),
            Msg::Slot(r) => {
                push_values(l);
                ffi::lua_rawgeti(l, -1, r as ffi::lua_Integer);
                ffi::luaL_unref(l, -2, r);
                ffi::lua_remove(l, -2);
            }
            Msg::Copied(p) => return push_copied(l, &p),
            Msg::Kept(k) => {
                push_values(l);
                if let Some(r) = k.take_slot(ffi::lua_topointer(l, -1)) {
                    // The sender receives its own value back.
                    ffi::lua_rawgeti(l, -1, r as ffi::lua_Integer);
                    ffi::luaL_unref(l, -2, r);
                    ffi::lua_remove(l, -2);
                } else {
                    ffi::lua_pop(l, 1);
                    return push_copied(l, &k.copy);
                }
            }
        }
    }
    Ok(())
}

/// The address of `l`'s values table: it identifies the state (see
/// [`crate::portable::Kept`]).
///
/// # Safety
/// As [`push_values`].
pub unsafe fn values_id(l: *mut ffi::lua_State) -> *const c_void {
    // SAFETY: `l` is a valid thread with a free stack slot (the caller's
    // contract, `push_values`'s); reading the table's address and popping
    // it are inert.
    unsafe {
        push_values(l);
        let p = ffi::lua_topointer(l, -1);
        ffi::lua_pop(l, 1);
        p
    }
}

/// Releases slots of `l`'s values table let go of from other threads
/// ([`crate::portable::SlotOwner::release_later`]).
///
/// # Safety
/// As [`push_values`], with two free stack slots (one for `luaL_unref`);
/// `slots` are slots of `l`'s values table.
pub unsafe fn release_slots(l: *mut ffi::lua_State, slots: &[c_int]) {
    // SAFETY: `l` is a valid thread on the M that owns its actor, with two
    // free stack slots (the caller's contract: the values table and
    // `luaL_unref`'s one). The slots are the table's (the contract), so
    // `luaL_unref` writes only keys the table has: inert, nothing can raise
    // while `slots` is borrowed.
    unsafe {
        push_values(l);
        for &r in slots {
            ffi::luaL_unref(l, -1, r);
        }
        ffi::lua_pop(l, 1);
    }
}

/// Builds the copied value `p` in `l`, inside [`protect`].
///
/// # Safety
/// As [`push_msg`].
pub unsafe fn push_copied(
    l: *mut ffi::lua_State,
    p: &crate::portable::Portable,
) -> Result<(), Raised> {
    // SAFETY: a free stack slot on a valid thread of a state that
    // `init_state` prepared (the caller's contract): reading the registry
    // with `rawgetp` and popping are inert; the value is the address of a
    // `'static` face.
    let push = unsafe {
        ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, face_key());
        let face = ffi::lua_touserdata(l, -1) as *const Face;
        ffi::lua_pop(l, 1);
        face.as_ref().unwrap_or(&Face::NONE).push_copied
    };
    // SAFETY: `l` is a thread of an actor owned by this M that may run Lua
    // code now (the caller's contract, `push_msg`'s): what `protect` needs.
    // The closure holds the pusher (a function pointer) and a borrow of `p`,
    // nothing to drop (`protect` checks). The pusher (the state's face's)
    // is called as its type says: on that state, inside a
    // protected C function, where it may raise; `p` stays alive in the
    // caller across it, and the raise is caught by `protect`.
    unsafe {
        protect(l, 0, |l| {
            push(l, p);
            1
        })
    }
    .map(|_| ())
}

/// Runs `f` inside a `lua_pcall` on `l`: a raise in it (out of memory, an
/// error of a metamethod) comes back as `Err(Raised)` with the error object on
/// top of the stack, instead of skipping the caller's frames. The `nargs`
/// values on top of the stack are moved into the call, where `f` finds
/// them at indices `1..=nargs`. `f` returns how many values it left on
/// top; they stay there (`Ok(n)`).
///
/// `f` may own nothing that needs dropping (checked at compile time): a
/// raise skips its frame. Values the caller owns stay alive and are
/// dropped by the caller as usual. Costs one `lua_pcall` (about 40 ns):
/// for slow paths and for the scheduler's own allocations.
///
/// # Safety
/// `l` is a valid state or thread that may run Lua code now (not a
/// suspended coroutine), with `nargs` values on its stack.
pub unsafe fn protect<F>(l: *mut ffi::lua_State, nargs: c_int, f: F) -> Result<c_int, Raised>
where
    F: FnOnce(*mut ffi::lua_State) -> c_int,
{
    const {
        assert!(
            !std::mem::needs_drop::<F>(),
            "a protected closure owns nothing"
        )
    };
    /// Runs the closure whose `Option<F>` is at argument 1.
    ///
    /// # Safety
    /// Called only by `protect`'s `lua_pcall`, with the address of a live
    /// `Some(F)` as a light userdata at argument 1.
    unsafe extern "C-unwind" fn trampoline<F>(l: *mut ffi::lua_State) -> c_int
    where
        F: FnOnce(*mut ffi::lua_State) -> c_int,
    {
        // SAFETY: `protect` passed the address of its `Option<F>` as the
        // first argument, alive until `lua_pcall` returns; the closure is
        // taken exactly once. `f` owns nothing to drop, so a raise in it
        // (caught by `lua_pcall`) skips no destructor of this frame.
        unsafe {
            let slot = ffi::lua_touserdata(l, 1) as *mut Option<F>;
            ffi::lua_remove(l, 1);
            let f = (*slot).take().expect("a protected closure runs once");
            f(l)
        }
    }
    // `lua_pcall` does not raise: a raise inside comes back as its status.
    // SAFETY: `l` is a valid thread that may run Lua code now, with `nargs`
    // values on its stack (the caller's contract): `base + 1` is an index.
    // `lua_checkstack` makes room for the two values pushed; it, the pushes
    // (a C function without upvalues allocates nothing), the rotation and
    // the pops are inert. `slot` (`F` owns nothing, checked above) outlives
    // the call: the trampoline's pointer to it is valid while it runs.
    unsafe {
        if ffi::lua_checkstack(l, 2) == 0 {
            // The stack is full (a C function starts with 20 free slots, so
            // this is a Lua stack overflow): the error is a nil in place of
            // the arguments (with none, the caller's top value stands in).
            if nargs > 0 {
                ffi::lua_pop(l, nargs);
                ffi::lua_pushnil(l);
            }
            return Err(Raised);
        }
        let mut slot = Some(f);
        let base = ffi::lua_gettop(l) - nargs;
        ffi::lua_pushcfunction(l, trampoline::<F>);
        ffi::lua_pushlightuserdata(l, &mut slot as *mut Option<F> as *mut c_void);
        ffi::lua_rotate(l, base + 1, 2);
        match ffi::lua_pcall(l, nargs + 1, ffi::LUA_MULTRET, 0) {
            ffi::LUA_OK => Ok(ffi::lua_gettop(l) - base),
            _ => Err(Raised),
        }
    }
}

thread_local! {
    /// Bytes on their way into a Lua string (see [`push_owned`]).
    static HANDOFF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Pushes `bytes` as a Lua string without keeping them alive on the Rust
/// stack across the raising push (rule 2): they are handed to a
/// thread-local buffer first. `lua_pushlstring` copies them before any
/// Lua code can run (a finalizer runs only in the collection step at its
/// end), so a nested push cannot replace them too early.
///
/// # Safety
/// `l` is a valid state with a free stack slot; the push may raise.
pub unsafe fn push_owned(l: *mut ffi::lua_State, bytes: impl Into<Vec<u8>>) {
    let (p, n) = HANDOFF.with_borrow_mut(|h| {
        *h = bytes.into();
        (h.as_ptr(), h.len())
    });
    // Lua copies `p..p + n` before the collection step that ends the push,
    // the first point where a finalizer (maybe one that calls `push_owned`)
    // can run; an emergency collection on a failed allocation runs none.
    // SAFETY: `l` is a valid state with a free stack slot, where the push
    // may raise (the caller's contract). `bytes` has moved into `HANDOFF`:
    // this frame owns nothing a raise would skip, no `RefCell` borrow is
    // held, and `HANDOFF`'s buffer stays until Lua has copied it (above).
    unsafe { ffi::lua_pushlstring(l, p as *const _, n) };
    HANDOFF.with_borrow_mut(|h| *h = Vec::new());
}

/// Pushes a borrowed string (the caller owns nothing that a raise would
/// skip, or the bytes are static).
///
/// # Safety
/// `l` is a valid state with a free stack slot; the push may raise.
pub unsafe fn push_str(l: *mut ffi::lua_State, s: &str) {
    // SAFETY: `l` is a valid state with a free stack slot, where the push
    // may raise (the caller's contract); `s` is borrowed, alive until the
    // push returns, and Lua copies it before anything else can run.
    unsafe { ffi::lua_pushlstring(l, s.as_ptr() as *const _, s.len()) };
}

/// A Lua error was raised inside [`protect`]: its error object is on top
/// of the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raised;

/// Rebuilds a copied value in a state (the stdlib knows its userdata).
/// It may raise: it is called inside [`protect`] only, on a thread of an
/// actor owned by the calling M.
pub type CopiedPusher = unsafe fn(*mut ffi::lua_State, &crate::portable::Portable);

/// Frees the slot of a message that will not be delivered.
///
/// # Safety
/// As [`push_values`], with two free stack slots (one for `luaL_unref`);
/// a `Msg::Slot` is a slot of `l`'s values table.
pub unsafe fn release_msg(l: *mut ffi::lua_State, msg: Msg) {
    // A `Kept` lets go of its slot when dropped, through its sender's
    // deferred releases.
    if let Msg::Slot(r) = msg {
        // SAFETY: `l` is a valid thread on the M that owns its actor, with
        // two free stack slots, and `r` a slot of its values table (the
        // caller's contract): `luaL_unref` writes only keys the table has,
        // so every call here is inert and nothing can raise while `msg`
        // is alive.
        unsafe {
            push_values(l);
            ffi::luaL_unref(l, -1, r);
            ffi::lua_pop(l, 1);
        }
    }
}

/// What one resume of a G came back with.
pub enum Resumed {
    /// Yielded a park request.
    Parked(WaitReason),
    /// Yielded `runtime.gosched()`.
    Gosched,
    /// Preempted by sysmon (a hook yield, or one forwarded from a nested
    /// coroutine).
    Preempted,
    /// Returned, or `runtime.goexit()`.
    Exited,
    /// An uncaught error: message and Lua traceback.
    Panicked(String, String),
}

/// The string at `idx`, or "" for any other value (inert: a number is
/// not converted).
///
/// # Safety
/// `l` is a valid thread of an actor owned by the calling M, and `idx` a
/// valid index.
unsafe fn string_at(l: *mut ffi::lua_State, idx: c_int) -> String {
    // SAFETY: `l` is a valid thread and `idx` a valid index (the caller's
    // contract). `lua_tolstring` of a string (checked first) converts
    // nothing: inert, and it returns the string's `len` bytes, which live
    // while the string is on the stack, through the copy made here (no Lua
    // call in between).
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TSTRING {
            return String::new();
        }
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, idx, &mut len);
        String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len)).into_owned()
    }
}

/// Pushes the results `wake` describes on the suspended thread `th`;
/// returns how many. Only inert calls touch `th` (rule 4): a copied value
/// is built on `scratch` (the actor's main thread, idle while its M runs
/// Gs) inside [`protect`] and moved over; if it cannot be built, the
/// receive raises the error instead (`ERR, error`), and the value is
/// dropped: the receiver was told. A send on a closed channel raises a
/// message with a static address (pushing a string could fail here).
///
/// # Safety
/// `th` is a live, suspended thread of an actor owned by the calling M,
/// with four free stack slots; `scratch` is that actor's main thread, not
/// running, and may run Lua code now. The messages in `wake` are of
/// `th`'s state (their slots are its values table's).
unsafe fn push_wake(th: *mut ffi::lua_State, scratch: LuaThread, wake: Option<Wake>) -> c_int {
    /// The value of a receive: pushed on `th`, or the error raised instead.
    ///
    /// # Safety
    /// As [`push_wake`], with three free stack slots on `th` (`m` is of
    /// `th`'s state).
    unsafe fn value(th: *mut ffi::lua_State, scratch: LuaThread, m: Msg) -> bool {
        // A copied or kept value is built on `scratch`, which the running
        // slot names meanwhile, and moved over (`lua_xmove`, inert).
        // SAFETY: `th` is suspended with three free slots; `scratch`, of the
        // same state, may run Lua code (the caller's contract). On `th` only
        // inert calls. On `scratch`, `lua_checkstack` makes `push_msg`'s room
        // first; a copy is built inside `protect`, so its raise is caught and
        // `m`'s parts are dropped as usual.
        unsafe {
            match m {
                // Built elsewhere: a copy, or a kept value whose slot is this
                // state's (`push_msg` takes it, inert) or another's. The
                // building may run finalizers: the running slot names the
                // scratch thread meanwhile, so that a stop reaches them.
                Msg::Copied(_) | Msg::Kept(_) => {
                    if ffi::lua_checkstack(scratch.0, 4) == 0 {
                        ffi::lua_pushlightuserdata(th, park::err().0);
                        park::push_static(th, &park::STACK_OVERFLOW_MSG);
                        return false;
                    }
                    let slot = preempt::current_slot();
                    let outer = slot.map(|s| s.swap(scratch.0));
                    let built = push_msg(scratch.0, m).is_ok();
                    if let (Some(s), Some(outer)) = (slot, outer) {
                        s.swap(outer);
                    }
                    if !built {
                        ffi::lua_pushlightuserdata(th, park::err().0);
                    }
                    ffi::lua_xmove(scratch.0, th, 1);
                    built
                }
                // Inert: scalars and a slot of this state's values table.
                m => push_msg(th, m).is_ok(),
            }
        }
    }
    // SAFETY: `th` is suspended with four free stack slots, `scratch` may
    // run Lua code, and the messages are of `th`'s state (the caller's
    // contract). On `th` only inert pushes, at most four values at a time:
    // an integer, then `value` (three slots, one kept), then a boolean; or
    // `release_msg` (two slots, inert for a slot of `th`'s values table)
    // then two light userdata. `wake`, alive throughout, is dropped as usual:
    // nothing here raises (a copy's raise is caught inside `value`).
    unsafe {
        match wake {
            None | Some(Wake::Unit) => 0,
            Some(Wake::Recv(m, ok)) => {
                if !value(th, scratch, m) {
                    return 2;
                }
                ffi::lua_pushboolean(th, ok as c_int);
                2
            }
            Some(Wake::Select { case, recv }) => match recv {
                None => {
                    ffi::lua_pushinteger(th, case as ffi::lua_Integer);
                    1
                }
                Some((m, ok)) => {
                    ffi::lua_pushinteger(th, case as ffi::lua_Integer);
                    if !value(th, scratch, m) {
                        ffi::lua_remove(th, -3);
                        return 2;
                    }
                    ffi::lua_pushboolean(th, ok as c_int);
                    3
                }
            },
            Some(Wake::Io(why)) => {
                ffi::lua_pushinteger(th, why as ffi::lua_Integer);
                1
            }
            Some(Wake::SendClosed(unsent)) => {
                if let Some(m) = unsent {
                    release_msg(th, m);
                }
                ffi::lua_pushlightuserdata(th, park::err().0);
                park::push_static(th, &park::SEND_ON_CLOSED_MSG);
                2
            }
            Some(Wake::Interrupted) => {
                ffi::lua_pushlightuserdata(th, park::err().0);
                park::push_static(th, &park::INTERRUPTED_MSG);
                2
            }
            Some(Wake::Reclaimed) => {
                ffi::lua_pushlightuserdata(th, park::err().0);
                park::push_static(th, &park::LEAKED_MSG);
                2
            }
        }
    }
}

/// Resumes the G whose thread is `th` with `wake` (the caller has
/// published `th` in its P's running slot), and reads what it
/// yielded or returned (see the table in [`crate::sched::m`]). `sel_sends`
/// are the values of the G's parked select: all but the winning case's
/// are released.
///
/// # Safety
/// `th` is a live, suspended thread of an actor owned by the calling M;
/// `scratch` is that actor's main thread, not running. A `Msg::Slot` in
/// `wake` or `sel_sends` is a slot of that actor's values table.
pub unsafe fn resume(
    th: LuaThread,
    scratch: LuaThread,
    nstart: c_int,
    wake: Option<Wake>,
    sel_sends: Option<Box<SelectSends>>,
) -> Resumed {
    // After `lua_resume` only inert calls: reads of what the G left, and a
    // pop of them (lugo never calls `lua_toclose`, and a Lua function's
    // to-be-closed variables lie below what it yields or returns).
    // SAFETY: `th` is a suspended thread of this M's actor, `scratch` its
    // idle main thread, the slots in `wake`/`sel_sends` its own (the
    // caller's contract); `lua_checkstack` makes `release_msg`'s and
    // `push_wake`'s room. `lua_resume` returns raises and yields as a status,
    // never by `longjmp` through this frame; `th` is then not running.
    unsafe {
        let th = th.0;
        if ffi::lua_checkstack(th, 8) == 0 {
            return Resumed::Panicked("stack overflow (resuming goroutine)".into(), String::new());
        }
        let won = match &wake {
            Some(Wake::Select { case, .. }) => *case,
            _ => 0,
        };
        if let Some(sends) = sel_sends {
            for (case, m) in *sends {
                if case != won {
                    release_msg(th, m);
                }
            }
        }
        // A new G's function arguments are on its stack already.
        let nargs = if nstart > 0 {
            nstart
        } else {
            push_wake(th, scratch, wake)
        };
        let mut nres: c_int = 0;
        let status = ffi::lua_resume(th, ptr::null_mut(), nargs, &mut nres);
        preempt::disarm(th);
        match status {
            ffi::LUA_OK | ffi::LUA_YIELD => {
                let base = ffi::lua_gettop(th) - nres + 1;
                let sched = nres >= 2
                    && ffi::lua_type(th, base) == ffi::LUA_TLIGHTUSERDATA
                    && ffi::lua_touserdata(th, base) == park::sched().0;
                let r = if !sched && status == ffi::LUA_YIELD {
                    // A yield without SCHED at the top of a G is the hook's.
                    preempt::take_preempted();
                    Resumed::Preempted
                } else if !sched {
                    Resumed::Exited
                } else {
                    match ffi::lua_tointegerx(th, base + 1, ptr::null_mut()) {
                        park::KIND_GOSCHED => Resumed::Gosched,
                        park::KIND_PREEMPT => Resumed::Preempted,
                        park::KIND_EXIT => Resumed::Exited,
                        park::KIND_PANIC => {
                            Resumed::Panicked(string_at(th, base + 2), string_at(th, base + 3))
                        }
                        k => match WaitReason::from_code(k - park::KIND_PARK) {
                            Some(r) if k >= park::KIND_PARK => Resumed::Parked(r),
                            _ => Resumed::Panicked(
                                "lugo: bad scheduler request".into(),
                                String::new(),
                            ),
                        },
                    }
                };
                // Pop what it returned or yielded. Not with `lua_settop` from
                // the base: a thread yielded by the preemption hook in the
                // middle of a call with many arguments has its top above its
                // frame's, which Lua's API checks refuse as a new top.
                if nres > 0 {
                    ffi::lua_pop(th, nres);
                }
                r
            }
            _ => {
                // Raised outside the goroutine's xpcall (out of memory in the
                // message handler): no traceback to be had.
                let msg = match ffi::lua_type(th, -1) {
                    ffi::LUA_TSTRING => string_at(th, -1),
                    _ => "(error object is not a string)".into(),
                };
                Resumed::Panicked(msg, String::new())
            }
        }
    }
}

/// What `read` makes on `l` inside [`protect`] (rule 4), `None` if it
/// raised; `l`'s stack is put back as it was. The scheduler's readings of
/// a goroutine's thread (its traceback, creator, wait object).
///
/// # Safety
/// `l` may run Lua code now (`protect`'s contract); `read` owns nothing
/// with a destructor across its raising calls.
unsafe fn read_protected<T>(
    l: *mut ffi::lua_State,
    read: impl FnOnce(*mut ffi::lua_State) -> Option<T>,
) -> Option<T> {
    let mut out = None;
    // SAFETY: the contract; the closure given to `protect` holds `read` (no
    // destructor, by the contract) and a borrow of `out`, written last;
    // `lua_settop` back to `top` is inert.
    unsafe {
        let top = ffi::lua_gettop(l);
        let _ = protect(l, 0, |l| {
            out = read(l);
            0
        });
        ffi::lua_settop(l, top);
    }
    out
}

/// The Lua traceback of thread `th`, built on `scratch` inside
/// [`protect`] (rule 4; nothing is pushed on `th`). Empty if it cannot be
/// built (out of memory).
///
/// # Safety
/// `th` is a live thread of an actor owned by the calling M, not running;
/// `scratch` is a thread of the same state that may run Lua code now (the
/// actor's main thread, or the running thread).
pub unsafe fn traceback(scratch: LuaThread, th: LuaThread) -> String {
    let (l, th) = (scratch.0, th.0);
    // SAFETY: `scratch` may run Lua code now and `th`, of the same state,
    // is not running (the caller's contract). The reader holds only `th`
    // (an address): `luaL_traceback` reads `th`'s frames and builds the
    // string on `l` (a protected C function's stack has room), then
    // `string_at` copies it (inert).
    unsafe {
        read_protected(l, |l| {
            ffi::luaL_traceback(l, th, ptr::null(), 0);
            Some(string_at(l, -1))
        })
        .unwrap_or_default()
    }
}

/// Stack slots below a goroutine's function that say who created it: the
/// creating goroutine's id (0: none), the function that called `go` (nil:
/// unknown) and the line it was at. lugo-stdlib's `spawn` pushes them,
/// its goroutine bodies leave them in place; [`creator`] reads them.
pub const CREATOR_SLOTS: c_int = 3;

/// Who created a goroutine, as dumps say it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Creator {
    /// The creating goroutine's id (0: the host, or nobody).
    pub parent: u64,
    /// Where the creator's function was defined (`t.lua:3`), `main chunk`
    /// for a chunk, empty when unknown.
    pub function: String,
    /// Where `go` was called (`t.lua:10`), empty when unknown.
    pub at: String,
}

/// Who created the goroutine whose thread is `th`: its creator slots,
/// read on `scratch` inside [`protect`] (rule 4); `th` is left as it was.
/// `None` if they cannot be read (a thread that is not a goroutine's,
/// out of memory).
///
/// # Safety
/// As [`traceback`]: `th` is a live thread of an actor owned by the
/// calling M, not running, or the running thread itself (`scratch == th`);
/// `scratch` a thread of the same state that may run Lua code now.
pub unsafe fn creator(scratch: LuaThread, th: LuaThread) -> Option<Creator> {
    let (l, th) = (scratch.0, th.0);
    // SAFETY: the contract. In `read_protected` (room checked, a raise
    // caught): the creator slots are copied onto `l` (`lua_getlocal` pushes
    // onto `th`, which has a slot: checked, then `lua_xmove` moves it,
    // leaving `th`'s height as it was; a thread that has not run yet has
    // them on its stack at 2..), `lua_getinfo` reads the function (">S"
    // pops it), the strings are copied out (inert) after the last call that
    // may raise.
    unsafe {
        read_protected(l, |l| {
            if ffi::lua_checkstack(th, 1) == 0 || ffi::lua_checkstack(l, CREATOR_SLOTS + 2) == 0 {
                return None;
            }
            let mut ar: ffi::lua_Debug = std::mem::zeroed();
            let mut level = 0;
            while ffi::lua_getstack(th, level + 1, &mut ar) != 0 {
                level += 1;
            }
            if ffi::lua_getstack(th, level, &mut ar) != 0 {
                // Running or parked: the body's C frame holds them.
                for n in 1..=CREATOR_SLOTS {
                    if ffi::lua_getlocal(th, &ar, n).is_null() {
                        return None;
                    }
                    if th != l {
                        ffi::lua_xmove(th, l, 1);
                    }
                }
            } else if ffi::lua_gettop(th) > CREATOR_SLOTS {
                // Not started: the body, then the slots, on its stack.
                for n in 2..=CREATOR_SLOTS + 1 {
                    ffi::lua_pushvalue(th, n);
                    ffi::lua_xmove(th, l, 1);
                }
            } else {
                return None;
            }
            // [parent, function, line]
            let parent = ffi::lua_tointegerx(l, -3, ptr::null_mut()).max(0) as u64;
            let line = ffi::lua_tointegerx(l, -1, ptr::null_mut());
            let mut c = Creator {
                parent,
                ..Creator::default()
            };
            if ffi::lua_type(l, -2) == ffi::LUA_TFUNCTION {
                ffi::lua_pushvalue(l, -2);
                let mut fi: ffi::lua_Debug = std::mem::zeroed();
                ffi::lua_getinfo(l, c">S".as_ptr(), &mut fi);
                let src = std::ffi::CStr::from_ptr(fi.short_src.as_ptr()).to_string_lossy();
                let what = std::ffi::CStr::from_ptr(fi.what).to_bytes();
                c.function = match what {
                    b"main" => "main chunk".to_string(),
                    b"C" => String::new(),
                    _ => format!("{src}:{}", fi.linedefined),
                };
                if what != b"C" && line > 0 {
                    c.at = format!("{src}:{line}");
                }
            }
            Some(c)
        })
    }
}

/// What the parked goroutine whose thread is `th` waits on: the first
/// argument of the C function it parked in (a channel, a mutex, a socket,
/// an actor handle) as the face's `describe` (registry key `key`) says it,
/// with its address: `chan(cap 0, len 0, open) at 0x...`. Read on `scratch`
/// inside [`protect`] (rule 4); `th` is left as it was. `None` for anything
/// else (a sleep, a select, a park inside a coroutine of its own).
///
/// # Safety
/// As [`traceback`], `th` parked (not running).
pub unsafe fn wait_object(scratch: LuaThread, th: LuaThread, key: &'static str) -> Option<String> {
    if key.is_empty() {
        return None;
    }
    let (l, th) = (scratch.0, th.0);
    let Ok(name) = std::ffi::CString::new(key) else {
        return None;
    };
    // SAFETY: the contract. In `read_protected` (room checked, a raise
    // caught; `name` lives outside it): `lua_getlocal` pushes the top
    // frame's first argument onto `th` (a slot checked), `lua_xmove` moves
    // it to `l`, leaving `th`'s height as it was; `describe` is a C function
    // of the face (it reads the value, makes a string), called protected;
    // the string is copied out (inert), last.
    unsafe {
        read_protected(l, |l| {
            if ffi::lua_checkstack(th, 1) == 0 || ffi::lua_checkstack(l, 4) == 0 {
                return None;
            }
            let mut ar: ffi::lua_Debug = std::mem::zeroed();
            if ffi::lua_getstack(th, 0, &mut ar) == 0
                || ffi::lua_getinfo(th, c"S".as_ptr(), &mut ar) == 0
                || std::ffi::CStr::from_ptr(ar.what).to_bytes() != b"C"
                || ffi::lua_getlocal(th, &ar, 1).is_null()
            {
                return None;
            }
            ffi::lua_xmove(th, l, 1);
            if ffi::lua_type(l, -1) != ffi::LUA_TUSERDATA {
                return None;
            }
            let at = ffi::lua_topointer(l, -1);
            ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, name.as_ptr());
            ffi::lua_pushvalue(l, -2);
            (ffi::lua_pcall(l, 1, 1, 0) == ffi::LUA_OK && ffi::lua_type(l, -1) == ffi::LUA_TSTRING)
                .then(|| format!("{} at {at:p}", string_at(l, -1)))
        })
    }
}

/// Releases the registry reference that kept a G's thread alive, on
/// `scratch`: not on the G's own thread, which may have been stopped with
/// its stack full to its frame's top (a hook's raise), where even the
/// slot `luaL_unref` needs is not there.
///
/// # Safety
/// `scratch` is the idle main thread of an actor owned by the calling M;
/// `r` came from `luaL_ref(.., LUA_REGISTRYINDEX)` in that state and is
/// released once.
pub unsafe fn unref_thread(scratch: LuaThread, r: c_int) {
    // SAFETY: `scratch` is an idle main thread of this M's actor, with the
    // free slot `luaL_unref` uses (a thread at rest has `LUA_MINSTACK`), and
    // `r` a live reference of that state's registry (the caller's
    // contract): the registry has the key, so the writes are inert.
    unsafe { ffi::luaL_unref(scratch.0, ffi::LUA_REGISTRYINDEX, r) };
}
