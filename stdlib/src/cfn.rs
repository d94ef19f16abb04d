//! Raw Lua C functions: the one module of lugo-stdlib's FFI machinery.
//!
//! The stdlib's hot calls (channel operations, `go`, `time.sleep`, the
//! `sync` methods) are plain C functions (`lua_CFunction`) rather than
//! mlua callbacks: no lock, no reference bookkeeping, no allocation on the
//! fast path. Their objects (channels, wait groups, mutexes) are full
//! userdata holding an `Arc<T>` ([`Boxed`]) with a metatable per type.
//!
//! Protocol of a C function body: it returns a [`Ret`], which [`guard`]
//! carries out. A function that must park yields `SCHED, kind` to the M
//! with `lua_yieldk`; its continuation ([`after_park`]) returns the values
//! the M resumes it with, raising on `ERR, message`. Errors are raised as
//! `luaL_error` does, with the caller's position. Raising and yielding
//! `longjmp` out of the C function, so they happen in `guard`, after every
//! Rust value of the body has been dropped; so does the push of an
//! expected failure's `nil, message` ([`Ret::Fail`]), which may raise and
//! run finalizers. Inside the body, the rules of `lugo_vm::ffi` hold: owned
//! bytes are pushed with [`push_owned`], a userdata is allocated before the
//! value it holds ([`push`]), and raising steps taken while the body owns
//! values run in `ffi::protect`, whose error the body returns as
//! [`Ret::Rethrow`].
//!
//! lugo's userdata are protected: their metatables answer `getmetatable`
//! with the type's name (`__metatable`), and `__gc` acts only when the
//! collector calls it ([`collect`]), so a borrow of a userdata on the
//! stack stays valid whatever Lua code runs meanwhile.
//!
//! The functions [`Registry`] makes are light C functions (no closure, no
//! allocation): one finds its state's [`StateInner`] (the actor, and the
//! address of each [`Raw`] type's metatable), which lives as long as the
//! state, through the state's allocator record (`lugo_vm::mem::face_data`,
//! set by [`Registry::new`]).

use std::ffi::{c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use lugo_vm::{park, Actor, GRef, WaitReason};
use mlua::{ffi, Lua, Table};

/// A C function.
pub(crate) type CFn = unsafe extern "C-unwind" fn(*mut ffi::lua_State) -> c_int;

/// Lua's message for a yield where it cannot happen.
pub(crate) const CANNOT_PARK: &str = "attempt to yield across a C-call boundary";

/// A Rust type that Lua holds as a [`Boxed`] userdata.
pub(crate) trait Raw: Send + Sync + 'static {
    /// Registry name of its metatable.
    const NAME: &'static CStr;
    /// `__name`, as `tostring` shows it.
    const SHORT: &'static str;
    /// Marks its boxes, a second check after the metatable.
    const MAGIC: u64;
    /// Its number among the boxed types (from [`MT_CHAN`]): where its
    /// metatable's address is in [`StateInner`].
    const MT_UPVALUE: c_int;
    /// Its kinds past the first (`NAME`, `SHORT`): the registry name and
    /// `__name` of each further metatable. A box of any kind holds a `T`;
    /// each kind has its own methods (what tab completion offers), added
    /// with [`Registry::add_kind`] and boxed with [`new_box_of`].
    const KINDS: &'static [(&'static CStr, &'static str)] = &[];
    /// A shared object goroutines wait on (a channel, a lock, a context):
    /// each new box of it counts for leak checks (`lugo_vm::leak`).
    const SHARED: bool = false;
    /// `__name` of this value's kind (what `tostring` shows).
    fn short(&self) -> &'static str {
        Self::SHORT
    }
    /// Called by `__gc` before the box lets go of its reference.
    ///
    /// # Safety
    /// `l` is the state collecting the box.
    unsafe fn on_collect(&self, _l: *mut ffi::lua_State) {}
}

/// The memory block of a userdata holding an `Arc<T>`.
#[repr(C)]
pub(crate) struct Boxed<T> {
    magic: u64,
    /// From `Arc::into_raw`; null once collected.
    ptr: *const T,
}

/// The box at `idx`, if it holds a `T` (whose metatables, one per kind,
/// are `mts`).
///
/// # Safety
/// `l` is a valid state.
#[inline]
unsafe fn boxed_mt<T: Raw>(
    l: *mut ffi::lua_State,
    idx: c_int,
    mts: &[AtomicPtr<c_void>; MAX_KINDS],
) -> *mut Boxed<T> {
    // `debug.setmetatable` can give `T`'s metatable to any userdata, so a
    // block is read only if it is at least a `Boxed<T>` (`lua_rawlen`); the
    // magic is a second check, and a block that passes both is a box forged
    // through `debug`, which lugo trusts (the sandbox has no `debug`).
    // SAFETY: `l` is a valid state (the caller's contract); the value and
    // its metatable are only read, what is pushed is popped (inert). A full
    // userdata's block is aligned for any C type and lives while on the stack.
    unsafe {
        // Null for anything but a userdata; a light userdata (no block) has
        // no metatable of ours but through `debug`, and its length is 0.
        let p = ffi::lua_touserdata(l, idx) as *mut Boxed<T>;
        if p.is_null() || ffi::lua_getmetatable(l, idx) == 0 {
            return ptr::null_mut();
        }
        let found = ffi::lua_topointer(l, -1);
        ffi::lua_pop(l, 1);
        let ours = mts
            .iter()
            .any(|mt| ptr::eq(found, mt.load(Ordering::Relaxed)));
        if !ours || ffi::lua_rawlen(l, idx) < std::mem::size_of::<Boxed<T>>() {
            return ptr::null_mut();
        }
        if (*p).magic != T::MAGIC || (*p).ptr.is_null() {
            return ptr::null_mut();
        }
        p
    }
}

/// The box at `idx`, if it holds a `T`.
///
/// # Safety
/// `l` is a valid state running a closure made by [`Registry`].
#[inline]
unsafe fn boxed<T: Raw>(l: *mut ffi::lua_State, idx: c_int) -> *mut Boxed<T> {
    // SAFETY: `l` is running a closure made by `Registry` (the caller's
    // contract): `Closure::of` reads its state's record, what
    // `Closure::boxed` needs with a valid state.
    unsafe { Closure::of(l).boxed::<T>(l, idx) }
}

/// The `T` at `idx`, borrowed while the value stays on the stack (see
/// the module comment: explicit `__gc` calls cannot free it).
///
/// # Safety
/// As [`boxed`]; the reference must not outlive the value at `idx`.
#[inline]
pub(crate) unsafe fn check<'a, T: Raw>(l: *mut ffi::lua_State, idx: c_int) -> Option<&'a T> {
    // SAFETY: `l` is running a closure made by `Registry` (the caller's
    // contract, `boxed`'s). A non-null box holds the pointer `Arc::into_raw`
    // gave, which its `__gc` has not taken back: the `T` lives at least as
    // long as the userdata, and the caller keeps the reference no longer than
    // the value at `idx` (its contract; an explicit `__gc` call frees
    // nothing).
    unsafe {
        let p = boxed::<T>(l, idx);
        (!p.is_null()).then(|| &*(*p).ptr)
    }
}

/// Number of boxed types.
const NTYPES: usize = 8;
/// The most kinds (metatables) a boxed type has ([`Raw::KINDS`]).
const MAX_KINDS: usize = 3;

/// What every lugo C function of a state finds (`mem::face_data`): the
/// state's actor and its boxed types' metatables. Boxed and kept by the
/// state ([`StateActor`]) until mlua's records go, inside `lua_close` after
/// the finalizers of lugo's boxes (made later, finalized first); never
/// replaced (a state opened twice keeps its record).
pub(crate) struct StateInner {
    actor: Arc<Actor>,
    /// The metatables' addresses, by type number (`MT_UPVALUE - MT_CHAN`)
    /// and kind (null past a type's last): set by [`Registry::add_type`]
    /// and [`Registry::add_kind`] before any closure is made, read by the
    /// closures (all on the thread that runs the state).
    mts: [[AtomicPtr<c_void>; MAX_KINDS]; NTYPES],
    /// By type number, the last two blocks found to be live boxes of that
    /// type ([`Closure::boxed`]): a value checked again (the channel of a
    /// loop) is known by its address, without the metatable's check. A
    /// box's `__gc` forgets it ([`collect`]) before its block can be freed
    /// and its address reused. (A script that takes a box's metatable away
    /// with `debug.setmetatable` skips that `__gc`; lugo trusts `debug`,
    /// as `boxed_mt` says, and the sandbox has none.)
    seen: [[AtomicPtr<c_void>; 2]; NTYPES],
}

/// The running lugo C function's state record. Code that runs inside
/// `ffi::protect` gets it from the C function that called it.
#[derive(Clone, Copy)]
pub(crate) struct Closure {
    state: *const StateInner,
}

impl Closure {
    /// The record of the state of `l`, which runs a function made by
    /// [`Registry`].
    ///
    /// # Safety
    /// `l` is a thread of a state where [`Registry::new`] has run (so it
    /// is a lugo actor's: made by `lugo_vm::mem::new_state`), not closed.
    #[inline]
    pub(crate) unsafe fn of(l: *mut ffi::lua_State) -> Closure {
        // SAFETY: `l` is a live thread of a state made by `mem::new_state`
        // (the caller's contract); `Registry::new` kept its `StateInner`'s
        // address there, and reading it is inert.
        unsafe {
            Closure {
                state: lugo_vm::mem::face_data(l) as *const StateInner,
            }
        }
    }

    /// The box at `idx`, if it holds a `T` (see [`StateInner::seen`]).
    ///
    /// # Safety
    /// `l` is a valid thread of the closure's state, running, or held by
    /// the thread that runs the state.
    #[inline]
    pub(crate) unsafe fn boxed<T: Raw>(self, l: *mut ffi::lua_State, idx: c_int) -> *mut Boxed<T> {
        // SAFETY: `self.state` is the record `Registry` functions find,
        // alive while the state is, and `l` a thread of that state (the
        // caller's contract). `lua_touserdata` is inert. An address in
        // `seen` is a live box of `T` (its `__gc` has not run: it would
        // have forgotten it), so reading its magic and pointer reads a box;
        // a light userdata with the same address names the same box. Other
        // values take `boxed_mt`'s full check.
        unsafe {
            let inner = &*self.state;
            let seen = &inner.seen[(T::MT_UPVALUE - MT_CHAN) as usize];
            let p = ffi::lua_touserdata(l, idx);
            if !p.is_null()
                && (seen[0].load(Ordering::Relaxed) == p || seen[1].load(Ordering::Relaxed) == p)
            {
                let b = p as *mut Boxed<T>;
                return match (*b).magic == T::MAGIC && !(*b).ptr.is_null() {
                    true => b,
                    false => ptr::null_mut(),
                };
            }
            let b = boxed_mt::<T>(l, idx, self.mts::<T>());
            if !b.is_null() {
                seen[1].store(seen[0].load(Ordering::Relaxed), Ordering::Relaxed);
                seen[0].store(b as *mut c_void, Ordering::Relaxed);
            }
            b
        }
    }

    /// Forgets the block of a box of `T` being collected (see
    /// [`StateInner::seen`]).
    fn forget<T: Raw>(self, p: *mut c_void) {
        // SAFETY: as in `mt`.
        let inner = unsafe { &*self.state };
        for s in &inner.seen[(T::MT_UPVALUE - MT_CHAN) as usize] {
            let _ = s.compare_exchange(p, ptr::null_mut(), Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// The addresses of `T`'s metatables (one per kind) in the closure's
    /// state.
    #[inline]
    fn mts<'a, T: Raw>(self) -> &'a [AtomicPtr<c_void>; MAX_KINDS] {
        // SAFETY: `self.state` is the record `Registry` functions find,
        // alive while the state is (its functions run only then).
        let inner = unsafe { &*self.state };
        &inner.mts[(T::MT_UPVALUE - MT_CHAN) as usize]
    }

    /// The record the functions [`Registry`] made for `lua`'s state find,
    /// for Rust code working on the state outside any C function (a host
    /// thread that holds the state's lock). An error if lugo was not opened
    /// in `lua`.
    pub(crate) fn of_state(lua: &Lua) -> mlua::Result<Closure> {
        let held = lua
            .app_data_ref::<StateActor>()
            .ok_or_else(|| mlua::Error::runtime("this Lua state is not a lugo actor"))?;
        Ok(Closure {
            state: &*held.0 as *const StateInner,
        })
    }

    /// As [`check`].
    ///
    /// # Safety
    /// As [`check`], on a thread of the closure's state.
    pub(crate) unsafe fn check<'a, T: Raw>(
        self,
        l: *mut ffi::lua_State,
        idx: c_int,
    ) -> Option<&'a T> {
        // SAFETY: `l` is a thread of the closure's state (the caller's
        // contract), so `boxed` knows a `T` box as `check` does; a non-null
        // box holds a live `Arc::into_raw` pointer, and the caller keeps the
        // reference no longer than the value at `idx`.
        unsafe {
            let p = self.boxed::<T>(l, idx);
            (!p.is_null()).then(|| &*(*p).ptr)
        }
    }

    /// A new reference to the `T` at `idx`.
    ///
    /// # Safety
    /// As [`Closure::check`].
    pub(crate) unsafe fn arc<T: Raw>(self, l: *mut ffi::lua_State, idx: c_int) -> Option<Arc<T>> {
        // SAFETY: as `Closure::check` (the caller's contract): `raw` is the
        // pointer a live box got from `Arc::into_raw`, and the box keeps its
        // own count; one more strong count is the one the new `Arc` owns.
        unsafe {
            let raw = self.check::<T>(l, idx)? as *const T;
            Arc::increment_strong_count(raw);
            Some(Arc::from_raw(raw))
        }
    }

    /// The closure's actor (lives as long as the state).
    ///
    /// # Safety
    /// The state the closure came from is alive.
    pub(crate) unsafe fn actor<'a>(self) -> &'a Arc<Actor> {
        // SAFETY: `self.state` is the address of the boxed record that the
        // state keeps (as app data) until it is closed, and the state is
        // alive (the caller's contract).
        unsafe { &(*self.state).actor }
    }
}

/// Pushes a new userdata holding the `T` that `make` returns. The
/// userdata is allocated first (that may raise or run finalizers), and
/// `make` runs only once it exists: no new `Arc` is alive across the
/// allocation (ffi rule 2).
///
/// # Safety
/// `l` is a valid state with a free stack slot, where `T`'s metatable has
/// been registered.
pub(crate) unsafe fn push<T: Raw>(l: *mut ffi::lua_State, make: impl FnOnce() -> Arc<T>) {
    // SAFETY: the caller's contract is `new_box`'s (a valid state with a free
    // stack slot, `T`'s metatable registered); the new box stays on top of
    // the stack while `make` (Rust only) runs, and `fill` fills it once.
    unsafe {
        let p = new_box::<T>(l);
        fill(p, make());
    }
}

/// Pushes a new, empty userdata for a `T` (its `__gc` has nothing to
/// drop), to be filled with [`fill`] once the `T` exists: for values
/// that must not be made before the allocation can fail (a socket).
///
/// # Safety
/// As [`push`].
pub(crate) unsafe fn new_box<T: Raw>(l: *mut ffi::lua_State) -> *mut Boxed<T> {
    // SAFETY: the caller's contract is `new_box_of`'s, for kind 0.
    unsafe { new_box_of::<T>(l, 0) }
}

/// As [`new_box`], for a box of `T`'s kind `kind` (0: the first, else
/// `T::KINDS[kind - 1]`).
///
/// # Safety
/// As [`push`], with that kind's metatable registered.
pub(crate) unsafe fn new_box_of<T: Raw>(l: *mut ffi::lua_State, kind: usize) -> *mut Boxed<T> {
    let name = match kind {
        0 => T::NAME,
        k => T::KINDS[k - 1].0,
    };
    // SAFETY: `l` is a valid state with a free stack slot where the kind's
    // metatable is registered (the caller's contract). `lua_newuserdatauv`
    // (it may raise, before anything of ours exists) returns a block of
    // `size_of::<Boxed<T>>()` bytes aligned for any C type (`LUAI_MAXALIGN`:
    // `u64` and pointers included); it is written before the metatable, and
    // with it the `__gc` that reads it, is set (`luaL_setmetatable` reads the
    // registry and sets it: inert).
    unsafe {
        let p = ffi::lua_newuserdatauv(l, std::mem::size_of::<Boxed<T>>(), 0) as *mut Boxed<T>;
        p.write(Boxed {
            magic: T::MAGIC,
            ptr: ptr::null(),
        });
        ffi::luaL_setmetatable(l, name.as_ptr());
        if T::SHARED {
            // Allocates (may raise: the box is garbage then, unfilled).
            lugo_vm::leak::note_box(l);
        }
        p
    }
}

/// The object of the box at `idx` and its strong count, if it is a box
/// of a `T`.
///
/// # Safety
/// `l` is a valid thread of a lugo state (held by the caller).
unsafe fn shared_count<T: Raw>(l: *mut ffi::lua_State, idx: c_int) -> Option<(usize, usize)> {
    // SAFETY: the contract; a non-null box holds a pointer from
    // `Arc::into_raw` that the box owns a count of (alive while the box
    // is on the stack); the count is read without taking it
    // (`ManuallyDrop`).
    unsafe {
        let p = Closure::of(l).boxed::<T>(l, idx);
        if p.is_null() {
            return None;
        }
        let arc = std::mem::ManuallyDrop::new(Arc::from_raw((*p).ptr));
        Some(((*p).ptr as usize, Arc::strong_count(&arc)))
    }
}

/// [`lugo_vm::ffi::Face::shared_of`]: the object and strong count of a
/// box of a shared object (a channel, a lock, a context). Inert.
///
/// # Safety
/// `l` is a valid thread of a lugo state (held by the caller), with room
/// for two values.
pub(crate) unsafe fn shared_of(l: *mut ffi::lua_State, idx: c_int) -> Option<(usize, usize)> {
    use lugo_vm::sema::{RwMutex, SemMutex, Semaphore, WaitGroup};
    // SAFETY: the contract.
    unsafe {
        if ffi::lua_type(l, idx) != ffi::LUA_TUSERDATA {
            return None;
        }
        shared_count::<lugo_vm::Chan>(l, idx)
            .or_else(|| shared_count::<WaitGroup>(l, idx))
            .or_else(|| shared_count::<SemMutex>(l, idx))
            .or_else(|| shared_count::<RwMutex>(l, idx))
            .or_else(|| shared_count::<Semaphore>(l, idx))
            .or_else(|| shared_count::<crate::context::Ctx>(l, idx))
    }
}

/// Fills a box made by [`new_box`].
///
/// # Safety
/// `p` came from [`new_box`], is still on the stack, and is filled once.
pub(crate) unsafe fn fill<T: Raw>(p: *mut Boxed<T>, v: Arc<T>) {
    // SAFETY: `p` came from `new_box` and its userdata is still on the stack
    // (the caller's contract), so the block is alive; it is filled once, so
    // no reference is overwritten, and `__gc` releases this one.
    unsafe {
        debug_assert!((*p).ptr.is_null(), "a box is filled once");
        (*p).ptr = Arc::into_raw(v);
    }
}

/// Whether the running C function was called by the collector as a
/// finalizer (`__gc`), not by Lua code that reached the metamethod: Lua
/// names a function the collector calls `__gc`, as a metamethod, and no
/// other call gets that name (ldebug.c, `funcnamefromcall`: `CIST_FIN`).
///
/// # Safety
/// `l` is the state running the C function.
unsafe fn called_by_collector(l: *mut ffi::lua_State) -> bool {
    // SAFETY: `l` is the state running the C function (the caller's
    // contract); `lua_getstack` and `lua_getinfo` fill `ar` (zeroed: a valid
    // `lua_Debug`) and push nothing, and `name` and `namewhat`, when not
    // null, point at NUL-terminated strings that live while this call runs
    // (static ones, or strings of the calling function's prototype or of
    // the state's metamethod names).
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        if ffi::lua_getstack(l, 0, &mut ar) == 0 || ffi::lua_getinfo(l, c"n".as_ptr(), &mut ar) == 0
        {
            return false;
        }
        !ar.name.is_null()
            && !ar.namewhat.is_null()
            && CStr::from_ptr(ar.name) == c"__gc"
            && CStr::from_ptr(ar.namewhat) == c"metamethod"
    }
}

/// `__gc` of every boxed type: lets go of the box's reference, once, and
/// only when the collector calls it (a script that reached the function
/// through `debug.getmetatable` cannot free an object in use).
unsafe extern "C-unwind" fn collect<T: Raw>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this `__gc` (a closure made by `Registry`) on `l`,
    // the running thread, with the userdata at 1; `guard` is its last act. A
    // box holding a pointer owns one strong count (`Arc::into_raw`): it is
    // taken back once, the pointer nulled first, and only on the collector's
    // call, when the value is unreachable, so no borrow from a stack value is
    // alive. `on_collect` gets the state collecting the box (its contract);
    // the one implementation that acts (`Chan`'s) makes inert calls only, so
    // nothing skips the drop of `v`.
    unsafe {
        guard(l, || {
            // The full check (a dying box is not one to remember), then
            // forgotten: its block may be freed after this.
            let cl = Closure::of(l);
            let p = boxed_mt::<T>(l, 1, cl.mts::<T>());
            if !p.is_null() {
                cl.forget::<T>(p as *mut c_void);
            }
            if !p.is_null() && called_by_collector(l) {
                let v = Arc::from_raw((*p).ptr);
                (*p).ptr = ptr::null();
                v.on_collect(l);
            }
            Ret::N(0)
        })
    }
}

/// `__tostring` of every boxed type: `chan: 0x...`.
unsafe extern "C-unwind" fn tostring<T: Raw>(l: *mut ffi::lua_State) -> c_int {
    // SAFETY: Lua calls this C closure (made by `Registry`) on `l`, the
    // running thread, with the value at 1; `guard` is its last act. The
    // borrow from `check` ends at once (only its address is printed), and the
    // message is handed off (`push_owned`): nothing owned is alive across the
    // raising push.
    unsafe {
        guard(l, || {
            let (name, p) = match check::<T>(l, 1) {
                Some(v) => (v.short(), v as *const T),
                None => (T::SHORT, ptr::null()),
            };
            push_owned(l, format!("{name}: {p:p}"));
            Ret::N(1)
        })
    }
}

pub(crate) use lugo_vm::ffi::{push_owned, push_str};

/// Lua's name for the type of the value at `idx`.
///
/// # Safety
/// `l` is a valid state.
pub(crate) unsafe fn type_name(l: *mut ffi::lua_State, idx: c_int) -> String {
    // SAFETY: `l` is a valid state (the caller's contract); `luaL_typename`
    // returns one of Lua's static, NUL-terminated type names.
    unsafe {
        CStr::from_ptr(ffi::luaL_typename(l, idx))
            .to_string_lossy()
            .into_owned()
    }
}

/// The string or number at `idx` as a Rust string, without calling a
/// metamethod (a number is converted on a copy: that allocates).
///
/// # Safety
/// `l` is a valid state with a free stack slot.
pub(crate) unsafe fn to_display(l: *mut ffi::lua_State, idx: c_int) -> String {
    // SAFETY: `l` is a valid state with a free stack slot (the caller's
    // contract). Converting the copy of a number allocates and may raise,
    // while nothing is owned here; `p` points at `len` bytes of the string on
    // the stack, copied before it is popped.
    unsafe {
        ffi::lua_pushvalue(l, idx);
        let mut len = 0usize;
        let p = ffi::lua_tolstring(l, -1, &mut len);
        let s = if p.is_null() {
            String::new()
        } else {
            String::from_utf8_lossy(std::slice::from_raw_parts(p as *const u8, len)).into_owned()
        };
        ffi::lua_pop(l, 1);
        s
    }
}

/// How a C function ends.
pub(crate) enum Ret {
    /// Return this many results from the top of the stack.
    N(c_int),
    /// Raise this message with the position of the function at this stack
    /// level (1: the caller), as `luaL_error` does.
    Raise(c_int, String),
    /// Park the goroutine: yield `SCHED, kind` to the M; the values it is
    /// resumed with become the function's results.
    Park(WaitReason),
    /// Park, then continue in `k` (which finds the wake on top of the
    /// stack and `ctx` as its context): an operation that retries.
    ParkK(WaitReason, ffi::lua_KContext, ffi::lua_KFunction),
    /// Do not park: continue in `k` at once, as if woken ready (code 1).
    Retry(ffi::lua_KContext, ffi::lua_KFunction),
    /// Raise the error object on top of the stack as it is (the error of
    /// an `ffi::protect`).
    Rethrow,
    /// Return `nil, message`: an expected failure (`nil, "closed"`). The
    /// message is pushed by [`guard`], once the body's values are dropped.
    Fail(String),
}

/// Hands the running C function's call to the prelude's Lua function
/// kept in the registry as `key` (a variant of the call, written in Lua:
/// `ch:recv(ctx)`), with the function's first `nargs` arguments; returns
/// all its results. The Lua function may park: the call is made with a
/// continuation, which returns what it returned.
///
/// # Safety
/// `l` is the running thread of a C function, which returns what this
/// returns as its last act, with nothing owned (the call may raise).
pub(crate) unsafe fn delegate(l: *mut ffi::lua_State, key: &CStr, nargs: c_int) -> c_int {
    // SAFETY: `l` is the running thread of a C function whose last act this
    // is, owning nothing (the caller's contract): the registry lookup (it
    // may allocate the key and raise) and the call (it may raise or yield)
    // skip no destructor; a yield resumes in `all_results`, as the return
    // does.
    unsafe {
        ffi::lua_settop(l, nargs);
        ffi::lua_getfield(l, ffi::LUA_REGISTRYINDEX, key.as_ptr());
        ffi::lua_insert(l, 1);
        ffi::lua_callk(l, nargs, ffi::LUA_MULTRET, 0, Some(all_results));
        all_results(l, ffi::LUA_OK, 0)
    }
}

/// The continuation of [`delegate`]'s call: every value on the stack is a
/// result.
unsafe extern "C-unwind" fn all_results(
    l: *mut ffi::lua_State,
    _status: c_int,
    _ctx: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation on the thread of the C function
    // that `delegate` ran in, whose stack now holds the call's results only
    // (the function and its arguments were consumed by the call).
    unsafe { ffi::lua_gettop(l) }
}

/// Raise `msg` at the caller.
pub(crate) fn raise(msg: impl Into<String>) -> Ret {
    Ret::Raise(1, msg.into())
}

/// `fname: <what> expected, got <type>`.
///
/// # Safety
/// `l` is a valid state.
pub(crate) unsafe fn expected(l: *mut ffi::lua_State, fname: &str, what: &str, idx: c_int) -> Ret {
    // SAFETY: `l` is a valid state (the caller's contract), as `type_name`
    // requires.
    let t = unsafe { type_name(l, idx) };
    raise(format!("{fname}: {what} expected, got {t}"))
}

/// The actor of the running lugo C function (its state's record).
///
/// # Safety
/// `l` is running a closure made by [`Registry`].
pub(crate) unsafe fn actor<'a>(l: *mut ffi::lua_State) -> &'a Arc<Actor> {
    // SAFETY: `l` is running a closure made by `Registry` (the caller's
    // contract), whose record the state keeps to the end of `lua_close`,
    // after the closures' last call.
    unsafe { Closure::of(l).actor() }
}

/// The running G, if it can park here: inside a C call (a `string.gsub`
/// callback, a `table.sort` comparator), or in a coroutine resumed from
/// one, no yield reaches the M, so an operation must fail instead of
/// queueing a waiter that would never be resumed (`preempt::can_park`).
///
/// # Safety
/// `l` is the running thread of an actor owned by the calling M.
pub(crate) unsafe fn me(l: *mut ffi::lua_State, a: &Arc<Actor>) -> Option<GRef> {
    // SAFETY: `l` is the running thread of an actor owned by the calling M
    // (the caller's contract), what `can_park` requires.
    unsafe { lugo_vm::preempt::can_park(l).then(|| a.current()) }
}

/// Continuation of a parked C function: its results are the values the M
/// resumed it with, `ERR, message` meaning "raise this" (a string gets
/// the caller's position; a [`park::StaticMsg`] becomes its string).
unsafe extern "C-unwind" fn after_park(
    l: *mut ffi::lua_State,
    _status: c_int,
    base: ffi::lua_KContext,
) -> c_int {
    // SAFETY: Lua calls this continuation on `l`, the thread of the parked C
    // function, with the M's answer above `base` (the height of the stack
    // when it yielded). Only the M resumes a parked thread (lugo's `resume`,
    // `wrap` and `close` refuse held coroutines and goroutines' threads);
    // after `ERR` it puts a `park::StaticMsg` (`park::push_static`) or the
    // error object of a failed build (a string, or nil), never another light
    // userdata: `raise_wake_error`'s contract, with nothing owned here.
    unsafe {
        let base = base as c_int;
        if ffi::lua_gettop(l) > base && is_err(l, base + 1) {
            raise_wake_error(l, base + 2)
        }
        ffi::lua_gettop(l) - base
    }
}

/// Raises the error of a wake that carries one (`ERR` and its payload on
/// top of the stack: an interrupt withdrew the wait); returns otherwise.
/// For continuations that read their own wake (`Ret::ParkK`).
///
/// # Safety
/// `l` is the running thread of a continuation, whose stack the M left
/// as `after_park` describes; nothing with a destructor is alive in the
/// caller (this may raise).
pub(crate) unsafe fn raise_if_wake_error(l: *mut ffi::lua_State) {
    // SAFETY: the reads are inert; `raise_wake_error`'s contract is the
    // caller's (a user cannot push `ERR`: its address is private).
    unsafe {
        let top = ffi::lua_gettop(l);
        if top >= 2 && is_err(l, top - 1) {
            raise_wake_error(l, top)
        }
    }
}

/// Whether the value at `idx` is the `ERR` sentinel that comes before a
/// wake's error.
///
/// # Safety
/// `l` is a valid thread with a value at `idx` (the reads are inert).
unsafe fn is_err(l: *mut ffi::lua_State, idx: c_int) -> bool {
    // SAFETY: the contract.
    unsafe {
        ffi::lua_type(l, idx) == ffi::LUA_TLIGHTUSERDATA
            && ffi::lua_touserdata(l, idx) == park::err().0
    }
}

/// Raises the error a wake carries at `idx` (after `ERR`).
///
/// # Safety
/// `l` is the running thread; nothing with a destructor is alive in the
/// caller (this raises).
pub(crate) unsafe fn raise_wake_error(l: *mut ffi::lua_State, idx: c_int) -> ! {
    // SAFETY: `l` is the running thread and nothing with a destructor is
    // alive in the caller (its contract): these calls may raise, and
    // `lua_error` does. A light userdata at `idx` after `ERR` is the address
    // of a `park::StaticMsg` static: the M pushes no other (see
    // `after_park`).
    unsafe {
        match ffi::lua_type(l, idx) {
            ffi::LUA_TLIGHTUSERDATA => {
                let m = &*(ffi::lua_touserdata(l, idx) as *const park::StaticMsg);
                if std::ptr::eq(m, &park::INTERRUPTED_MSG) || std::ptr::eq(m, &park::LEAKED_MSG) {
                    // The stop's own error, as the stop hook raises it.
                    push_str(l, m.0);
                } else {
                    ffi::luaL_where(l, 1);
                    push_str(l, m.0);
                    ffi::lua_concat(l, 2);
                }
            }
            ffi::LUA_TSTRING => {
                ffi::luaL_where(l, 1);
                ffi::lua_pushvalue(l, idx);
                ffi::lua_concat(l, 2);
            }
            _ => ffi::lua_pushvalue(l, idx),
        }
        ffi::lua_error(l)
    }
}

/// Runs a C function body and carries out its [`Ret`]. A Rust panic (a
/// lugo bug) becomes a Lua error.
///
/// # Safety
/// `l` is the state the C function was called with; `guard` must be the
/// last thing the C function does (it may `longjmp`).
pub(crate) unsafe fn guard(l: *mut ffi::lua_State, f: impl FnOnce() -> Ret) -> c_int {
    let ret = catch_unwind(AssertUnwindSafe(f))
        .unwrap_or_else(|_| raise("lugo: internal error (a Rust panic) in the stdlib"));
    // A yield names its continuation (`after_park`, or the body's `k`, of
    // the same C function), which Lua calls on this stack with the wake on
    // top; `Retry` calls `k` at once, as a wake with code 1 would.
    // SAFETY: `l` is the C function's state and `guard` its last act (the
    // contract): a raise or yield skips only frames where nothing owned is
    // alive (the body's values were dropped when `f` returned; a message is
    // handed off by `push_owned` before the raising calls).
    unsafe {
        match ret {
            Ret::N(n) => n,
            Ret::Raise(level, msg) => {
                // The message goes to the hand-off buffer: nothing of ours is
                // alive across the raising calls below.
                push_owned(l, msg);
                ffi::luaL_where(l, level);
                ffi::lua_insert(l, -2);
                ffi::lua_concat(l, 2);
                ffi::lua_error(l)
            }
            Ret::Rethrow => ffi::lua_error(l),
            Ret::Fail(msg) => {
                ffi::lua_pushnil(l);
                // Handed off: nothing of ours is alive across the push,
                // which may raise or run finalizers.
                push_owned(l, msg);
                2
            }
            Ret::Park(reason) => {
                let base = ffi::lua_gettop(l);
                ffi::lua_pushlightuserdata(l, park::sched().0);
                ffi::lua_pushinteger(l, park::KIND_PARK + reason.code());
                ffi::lua_yieldk(l, 2, base as ffi::lua_KContext, Some(after_park))
            }
            Ret::Retry(ctx, k) => {
                ffi::lua_pushinteger(l, 1);
                k(l, ffi::LUA_OK, ctx)
            }
            Ret::ParkK(reason, ctx, k) => {
                ffi::lua_pushlightuserdata(l, park::sched().0);
                ffi::lua_pushinteger(l, park::KIND_PARK + reason.code());
                ffi::lua_yieldk(l, 2, ctx, Some(k))
            }
        }
    }
}

/// A table and the C functions still to be put in it.
type Pending = (Table, Vec<(&'static CStr, CFn)>);

/// Makes the C closures of one actor's state: first every type's
/// metatable ([`Registry::add_type`]), then every closure
/// ([`Registry::fill`]), so each closure sees every metatable.
pub(crate) struct Registry {
    /// Types added so far (they go in `MT_*` order).
    ntypes: usize,
    /// Methods and metamethods to fill once every type is known.
    pending: Vec<Pending>,
}

/// The numbers of the boxed types ([`Raw::MT_UPVALUE`]), from 2.
pub(crate) const MT_CHAN: c_int = 2;
/// See [`MT_CHAN`].
pub(crate) const MT_WAITGROUP: c_int = 3;
/// See [`MT_CHAN`].
pub(crate) const MT_MUTEX: c_int = 4;
/// See [`MT_CHAN`].
pub(crate) const MT_NET: c_int = 5;
/// See [`MT_CHAN`].
pub(crate) const MT_ACTOR: c_int = 6;
/// See [`MT_CHAN`].
pub(crate) const MT_CONTEXT: c_int = 7;
/// See [`MT_CHAN`].
pub(crate) const MT_RWMUTEX: c_int = 8;
/// See [`MT_CHAN`].
pub(crate) const MT_SEMAPHORE: c_int = 9;

/// The record its C functions find, kept by the state (as app data).
/// Its address is kept for them (`mem::face_data`), so it is boxed: its
/// address stays. It is set once per state and never replaced or removed.
struct StateActor(Box<StateInner>);

impl Registry {
    /// A registry for `actor`'s state `lua`. The functions find a boxed
    /// record (the actor, the metatables) that the state itself keeps (as
    /// app data), its address kept with the state's allocator record
    /// (`Actor::set_face_data`): it lives as long as the functions may run,
    /// into `lua_close` (mlua's records, with the app data, are made before
    /// any of lugo's boxes and so finalized after them), and no longer, so
    /// a closed state lets go of its actor.
    ///
    /// A state opened before (`lugo_stdlib::open` called again) keeps the
    /// box it has. A state that belongs to another actor is an error.
    pub(crate) fn new(lua: &Lua, actor: &Arc<Actor>) -> mlua::Result<Registry> {
        let held = lua
            .app_data_ref::<StateActor>()
            .map(|held| Arc::ptr_eq(&held.0.actor, actor));
        match held {
            Some(true) => {}
            Some(false) => {
                return Err(mlua::Error::runtime(
                    "lugo: this Lua state already belongs to another actor",
                ))
            }
            None => {
                let boxed = Box::new(StateInner {
                    actor: actor.clone(),
                    mts: Default::default(),
                    seen: Default::default(),
                });
                let ptr = &*boxed as *const StateInner as *mut c_void;
                lua.set_app_data(StateActor(boxed));
                actor.set_face_data(ptr);
            }
        }
        Ok(Registry {
            ntypes: 0,
            pending: Vec::new(),
        })
    }

    /// Creates `T`'s metatable with a table of `methods` (C functions, put
    /// there by [`Registry::fill`]) as `__index`, and returns the methods
    /// table. Types must be added in the order of their `MT_UPVALUE`.
    pub(crate) fn add_type<T: Raw>(
        &mut self,
        lua: &Lua,
        methods: &[(&'static CStr, CFn)],
    ) -> mlua::Result<Table> {
        assert_eq!(
            T::MT_UPVALUE,
            MT_CHAN + self.ntypes as c_int,
            "types in MT_ order"
        );
        self.ntypes += 1;
        self.add_metatable::<T>(lua, 0, methods)
    }

    /// As [`Registry::add_type`], for `T`'s kind `kind` (from 1, in
    /// [`Raw::KINDS`]' order), right after the type.
    pub(crate) fn add_kind<T: Raw>(
        &mut self,
        lua: &Lua,
        kind: usize,
        methods: &[(&'static CStr, CFn)],
    ) -> mlua::Result<Table> {
        assert_eq!(
            T::MT_UPVALUE,
            MT_CHAN + self.ntypes as c_int - 1,
            "a kind of the last type"
        );
        assert!(
            (1..=T::KINDS.len()).contains(&kind) && kind < MAX_KINDS,
            "a kind of T"
        );
        self.add_metatable::<T>(lua, kind, methods)
    }

    /// Creates the metatable of `T`'s kind `kind`.
    fn add_metatable<T: Raw>(
        &mut self,
        lua: &Lua,
        kind: usize,
        methods: &[(&'static CStr, CFn)],
    ) -> mlua::Result<Table> {
        let (name, short) = match kind {
            0 => (T::NAME, T::SHORT),
            k => T::KINDS[k - 1],
        };
        // SAFETY: `exec_raw` runs the closure on the state's stack inside a
        // protected call; it leaves the metatable in the registry, and the
        // methods table and the metatable on the stack, returned as the
        // result.
        let (mt, (table, metatable)) = unsafe {
            let mut mt = ptr::null_mut();
            let tables: (Table, Table) = lua.exec_raw((), |l| {
                ffi::lua_createtable(l, 0, methods.len() as c_int);
                ffi::luaL_newmetatable(l, name.as_ptr());
                mt = ffi::lua_topointer(l, -1) as *mut c_void;
                ffi::lua_pushvalue(l, -2);
                ffi::lua_setfield(l, -2, c"__index".as_ptr());
                push_str(l, short);
                ffi::lua_setfield(l, -2, c"__name".as_ptr());
                // Protected: `getmetatable(v)` gives the type's name, so
                // a script cannot reach `__gc` or replace a method.
                push_str(l, short);
                ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
            })?;
            (mt, tables)
        };
        if let Some(held) = lua.app_data_ref::<StateActor>() {
            held.0.mts[(T::MT_UPVALUE - MT_CHAN) as usize][kind].store(mt, Ordering::Relaxed);
        }
        self.pending.push((table.clone(), methods.to_vec()));
        self.pending.push((
            metatable,
            vec![
                (c"__gc", collect::<T> as CFn),
                (c"__tostring", tostring::<T>),
            ],
        ));
        Ok(table)
    }

    /// Puts the functions `fns` in `t`, and those of every type added so
    /// far in their tables. Call after every type is added.
    pub(crate) fn fill(&mut self, lua: &Lua, t: &Table, fns: &[(&CStr, CFn)]) -> mlua::Result<()> {
        for (table, fns) in std::mem::take(&mut self.pending) {
            self.fill(lua, &table, &fns)?;
        }
        // One protected call for the whole table (not one per function: a
        // state is opened for every actor spawned).
        // SAFETY: `exec_raw` runs the closure on the state's stack inside a
        // protected call, with `t` at index 1; each step pushes a function's
        // name and the light C function (no allocation: it finds its state's
        // record by itself, see the module comment), and `lua_rawset` pops
        // both into `t`. The name's push and the set may raise (out of
        // memory): the closure owns nothing but borrows, and `exec_raw`
        // returns the error.
        unsafe {
            lua.exec_raw::<()>(t, |l| {
                for &(name, f) in fns {
                    ffi::lua_pushstring(l, name.as_ptr());
                    ffi::lua_pushcfunction(l, f);
                    ffi::lua_rawset(l, 1);
                }
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boxed type for the tests (no state of lugo's).
    struct Probe;

    impl Raw for Probe {
        const NAME: &'static CStr = c"lugo.test.probe";
        const SHORT: &'static str = "probe";
        const MAGIC: u64 = 0x7072_6f62_655f_7465;
        const MT_UPVALUE: c_int = MT_CHAN;
        const KINDS: &'static [(&'static CStr, &'static str)] =
            &[(c"lugo.test.probe.other", "other probe")];
    }

    /// Registers a metatable under each of `names`; their addresses, by
    /// kind, as a state's record keeps them.
    ///
    /// # Safety
    /// `l` runs inside a protected call (the registrations allocate).
    unsafe fn metatables(
        l: *mut ffi::lua_State,
        names: &[&CStr],
    ) -> [AtomicPtr<c_void>; MAX_KINDS] {
        let mts: [AtomicPtr<c_void>; MAX_KINDS] = Default::default();
        for (k, name) in names.iter().enumerate() {
            // SAFETY: the caller's contract: a raise is caught, and nothing
            // is owned here but `mts` (atomics, no destructor).
            unsafe {
                ffi::luaL_newmetatable(l, name.as_ptr());
                mts[k].store(ffi::lua_topointer(l, -1) as *mut c_void, Ordering::Relaxed);
                ffi::lua_pop(l, 1);
            }
        }
        mts
    }

    #[test]
    fn a_box_of_any_kind_of_its_type_is_one() {
        let lua = Lua::new();
        let (mut of_kind, mut unknown_kind) = (false, true);
        // SAFETY: as in the test below: both metatables are registered
        // before the box is made, the box is on top when `boxed_mt` reads
        // it, and its reference is taken back (no `__gc`).
        unsafe {
            lua.exec_raw::<()>((), |l| {
                let mts = metatables(l, &[Probe::NAME, Probe::KINDS[0].0]);
                let p = new_box_of::<Probe>(l, 1);
                fill(p, Arc::new(Probe));
                of_kind = !boxed_mt::<Probe>(l, -1, &mts).is_null();
                mts[1].store(ptr::null_mut(), Ordering::Relaxed);
                unknown_kind = !boxed_mt::<Probe>(l, -1, &mts).is_null();
                drop(Arc::from_raw((*p).ptr));
                (*p).ptr = ptr::null();
                ffi::lua_settop(l, 0);
            })
            .unwrap();
        }
        assert!(of_kind, "a box of the second kind is a Probe");
        assert!(!unknown_kind, "a metatable not among the type's is not");
    }

    #[test]
    fn a_userdata_smaller_than_a_box_is_not_one() {
        let lua = Lua::new();
        let (mut real, mut small) = (false, false);
        // SAFETY: `exec_raw` runs the closure on the state's stack inside a
        // protected call, where nothing raises here but an allocation (with
        // nothing owned then). `Probe`'s metatable is registered before its
        // box is made, and the box is on top when `boxed_mt` reads it and
        // when its reference is taken back (the metatable has no `__gc`).
        // The small block, 8 bytes, is what `boxed_mt` must not read past:
        // it carries `Probe`'s metatable, as `debug.setmetatable` can give
        // it, and the magic in its 8 bytes.
        unsafe {
            lua.exec_raw::<()>((), |l| {
                let mts = metatables(l, &[Probe::NAME]);
                let p = new_box::<Probe>(l);
                fill(p, Arc::new(Probe));
                real = !boxed_mt::<Probe>(l, -1, &mts).is_null();
                drop(Arc::from_raw((*p).ptr));
                (*p).ptr = ptr::null();
                let ud = ffi::lua_newuserdatauv(l, 8, 0) as *mut u64;
                ud.write(Probe::MAGIC);
                ffi::luaL_setmetatable(l, Probe::NAME.as_ptr());
                small = !boxed_mt::<Probe>(l, -1, &mts).is_null();
                ffi::lua_settop(l, 0);
            })
            .unwrap();
        }
        assert!(real, "a box made by new_box is one");
        assert!(!small, "an 8-byte userdata with the metatable is not a box");
    }
}
