//! Memory accounts: what each actor's memory limit covers.
//!
//! An actor's [`Account`] counts its Lua heap (lugo's allocator is the
//! state's allocator from its first block, [`new_state`]) and what the
//! runtime holds for it ([`Account::charge`]): buffered channel slots,
//! copies of its values on
//! their way to other actors, pending timers, goroutine records, socket
//! buffers, and the actors it spawned. Past its limit an allocation fails:
//! Lua raises `not enough memory` (catchable; the state stays usable), and
//! so does a stdlib call whose charge is refused.
//!
//! Accounts form a tree: a spawned actor's account is a child of its
//! spawner's, and everything charged to the child is charged to the
//! parent too, so an actor and all it spawned stay within the parent's
//! limit (and each within its own). A child takes from its parent in
//! chunks of [`CHUNK`] bytes (its `reserved` bytes), so the parent's
//! counters, shared between threads, are touched once per chunk, not per
//! allocation; unused chunks go back.
//!
//! Invariants:
//! 1. `lua` is written only by the thread that runs the account's state
//!    (one at a time: actor invariant 2); other threads read it.
//! 2. `held` is changed by any thread, atomically; every charge is undone
//!    once ([`Charge`] does it on drop).
//! 3. With a parent, `reserved >= lua + held` except for the slack of a
//!    racing charge (at most one chunk per thread); `reserved` is what the
//!    parent's `held` includes for this child.
//!
//! Slack: the limit holds exactly for one actor; through a tree of actors
//! it may be passed by at most [`CHUNK`] per level, and a reading of
//! another thread's `lua` may be a few allocations old.
//!
//! Without a limit anywhere up the tree (`limited` false), nothing is
//! refused and the allocator only counts (a load and a store).

use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mlua::ffi;

/// A child takes from its parent's budget this many bytes at a time.
pub const CHUNK: usize = 64 << 10;

/// Bytes charged for an actor besides its Lua heap: the `Actor` record,
/// mlua's bookkeeping, its queues (measured: about 10 KB; rounded up).
pub const ACTOR_BYTES: usize = 16 << 10;
/// Bytes charged for a goroutine record besides its Lua thread.
pub const G_BYTES: usize = 128;
/// Bytes charged for a channel, plus [`SLOT_BYTES`] per unit of capacity
/// (charged when it is made, as Go allocates the buffer in `make`).
pub const CHAN_BYTES: usize = 256;
/// Bytes charged per buffered value of a channel's capacity.
pub const SLOT_BYTES: usize = 16;
/// Bytes charged for a pending timer.
pub const TIMER_BYTES: usize = 128;

/// Refused: past the limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoMemory;

impl std::fmt::Display for NoMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not enough memory")
    }
}

impl std::error::Error for NoMemory {}

/// What one actor may use and uses (see the module comment).
pub struct Account {
    parent: Option<Arc<Account>>,
    /// Own limit in bytes (`usize::MAX`: none of its own).
    limit: AtomicUsize,
    /// This account or one up the tree has a limit.
    limited: bool,
    /// Lua heap bytes (invariant 1).
    lua: AtomicUsize,
    /// Bytes held by the runtime for the actor, and its children's
    /// reservations (invariant 2).
    held: AtomicUsize,
    /// Bytes taken from the parent (invariant 3).
    reserved: AtomicUsize,
}

impl Account {
    /// A root account (the main actor's) with `limit` bytes (0: none).
    pub fn root(limit: usize) -> Arc<Account> {
        Arc::new(Account {
            parent: None,
            limit: AtomicUsize::new(Self::own(limit)),
            limited: limit > 0,
            lua: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
        })
    }

    /// An account under `parent` with its own `limit` (0: only the
    /// parent's).
    pub fn child(parent: &Arc<Account>, limit: usize) -> Arc<Account> {
        Arc::new(Account {
            parent: parent.limited.then(|| parent.clone()),
            limit: AtomicUsize::new(Self::own(limit)),
            limited: parent.limited || limit > 0,
            lua: AtomicUsize::new(0),
            held: AtomicUsize::new(0),
            reserved: AtomicUsize::new(0),
        })
    }

    fn own(limit: usize) -> usize {
        if limit == 0 {
            usize::MAX
        } else {
            limit
        }
    }

    /// The own limit (0: none).
    pub fn limit(&self) -> usize {
        match self.limit.load(Ordering::Relaxed) {
            usize::MAX => 0,
            l => l,
        }
    }

    /// Whether anything is refused at all.
    pub fn is_limited(&self) -> bool {
        self.limited
    }

    /// Bytes in use: the Lua heap and what is held.
    pub fn used(&self) -> usize {
        self.lua.load(Ordering::Relaxed) + self.held.load(Ordering::Relaxed)
    }

    /// Bytes of the Lua heap.
    pub fn lua_bytes(&self) -> usize {
        self.lua.load(Ordering::Relaxed)
    }

    /// Bytes held by the runtime (children's reservations included).
    pub fn held_bytes(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    /// Whether `used + n` fits: within the own limit, and within what the
    /// parent gives (taking more from it if needed).
    fn fits(&self, used: usize, n: usize) -> bool {
        let Some(want) = used.checked_add(n) else {
            return false;
        };
        if want > self.limit.load(Ordering::Relaxed) {
            return false;
        }
        let Some(parent) = &self.parent else {
            return true;
        };
        loop {
            let have = self.reserved.load(Ordering::Acquire);
            if want <= have {
                return true;
            }
            let more = (want - have).next_multiple_of(CHUNK);
            if parent.charge_raw(more).is_err() {
                return false;
            }
            if self
                .reserved
                .compare_exchange(have, have + more, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return true;
            }
            // Another thread reserved meanwhile: give ours back, look again.
            parent.uncharge(more);
        }
    }

    /// Gives chunks the account no longer needs back to the parent,
    /// keeping one spare.
    fn shrink(&self) {
        let Some(parent) = &self.parent else { return };
        loop {
            let have = self.reserved.load(Ordering::Acquire);
            let keep = (self.used() + CHUNK).next_multiple_of(CHUNK);
            if have <= keep + CHUNK {
                return;
            }
            if self
                .reserved
                .compare_exchange(have, keep, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                parent.uncharge(have - keep);
                return;
            }
        }
    }

    fn charge_raw(&self, n: usize) -> Result<(), NoMemory> {
        if self.limited && !self.fits(self.used(), n) {
            return Err(NoMemory);
        }
        self.held.fetch_add(n, Ordering::AcqRel);
        Ok(())
    }

    /// Charges `n` bytes the runtime holds for the actor; refused past the
    /// limit. The bytes are given back when the [`Charge`] is dropped.
    pub fn charge(self: &Arc<Self>, n: usize) -> Result<Charge, NoMemory> {
        if !self.limited {
            return Ok(Charge::NONE);
        }
        self.charge_raw(n)?;
        Ok(Charge {
            account: Some(self.clone()),
            bytes: n,
        })
    }

    /// Undoes `charge_raw(n)`.
    fn uncharge(&self, n: usize) {
        self.held.fetch_sub(n, Ordering::AcqRel);
        self.shrink();
    }

    /// Charges `n` bytes that the caller gives back with [`Account::release`]
    /// (a count kept elsewhere: a goroutine record).
    pub fn hold(&self, n: usize) -> Result<(), NoMemory> {
        if self.limited {
            self.charge_raw(n)
        } else {
            Ok(())
        }
    }

    /// Gives back `n` bytes of [`Account::hold`].
    pub fn release(&self, n: usize) {
        if self.limited {
            self.uncharge(n);
        }
    }

    /// The Lua heap grows by `n` bytes (on the state's thread).
    #[inline]
    fn lua_grow(&self, n: usize) -> bool {
        let lua = self.lua.load(Ordering::Relaxed);
        if self.limited && !self.fits(lua + self.held.load(Ordering::Relaxed), n) {
            return false;
        }
        self.lua.store(lua + n, Ordering::Relaxed);
        true
    }

    /// The Lua heap grows by `n` bytes, not refused (the state is being
    /// made: [`Token::arm`]).
    #[inline]
    fn lua_count(&self, n: usize) {
        let lua = self.lua.load(Ordering::Relaxed);
        self.lua.store(lua + n, Ordering::Relaxed);
    }

    /// The Lua heap shrinks by `n` bytes (on the state's thread).
    #[inline]
    fn lua_shrink(&self, n: usize) {
        let lua = self.lua.load(Ordering::Relaxed);
        self.lua.store(lua.saturating_sub(n), Ordering::Relaxed);
        if self.parent.is_some() {
            self.shrink();
        }
    }

    /// The state is gone: its heap no longer counts.
    pub fn state_closed(&self) {
        self.lua.store(0, Ordering::Relaxed);
        self.shrink();
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        if let Some(parent) = &self.parent {
            let r = *self.reserved.get_mut();
            if r > 0 {
                parent.uncharge(r);
            }
        }
    }
}

impl std::fmt::Debug for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Account {{ lua: {}, held: {}, limit: {} }}",
            self.lua_bytes(),
            self.held_bytes(),
            self.limit()
        )
    }
}

/// Bytes charged to an account, given back on drop.
#[derive(Debug, Default)]
pub struct Charge {
    account: Option<Arc<Account>>,
    bytes: usize,
}

impl Charge {
    /// No charge (nothing is limited).
    pub const NONE: Charge = Charge {
        account: None,
        bytes: 0,
    };

    /// Charges `n` more bytes to the same account.
    pub fn grow(&mut self, n: usize) -> Result<(), NoMemory> {
        if let Some(a) = &self.account {
            a.charge_raw(n)?;
            self.bytes += n;
        }
        Ok(())
    }

    /// Bytes charged.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if let Some(a) = &self.account {
            a.uncharge(self.bytes);
        }
    }
}

/// What lugo's allocator knows of its state. Made by [`new_state`] before
/// the state, freed by [`close_state`] after `lua_close` has freed the
/// state's last block: alive whenever Lua calls the allocator.
struct Installed {
    account: Arc<Account>,
    /// The limit is enforced (from [`Token::arm`]); while the state, mlua's
    /// records and the standard library are made, blocks are only counted.
    armed: Cell<bool>,
    /// The state's first block, `lua_newstate`'s: its main thread and
    /// global state, the last block `lua_close` frees.
    main_block: Cell<*mut c_void>,
    /// Run just before the main block is freed ([`close_state`]).
    before_last_free: Cell<Option<Box<dyn FnOnce()>>>,
    /// A pointer the library that gives Lua its API keeps for the state
    /// ([`Token::set_face_data`]), alive as long as the state.
    face_data: Cell<*mut c_void>,
}

/// A state's allocator record ([`new_state`]), to give back to
/// [`close_state`].
pub struct Token(*mut Installed);

// SAFETY: the token is an address, used by the one thread that runs or
// closes the state (actor invariant 2).
unsafe impl Send for Token {}
// SAFETY: as above.
unsafe impl Sync for Token {}

/// A new Lua state whose allocator is lugo's from its first block, with
/// Lua's whole standard library (`debug` included: lugo runs scripts as
/// `lua` does; a sandboxed runtime takes it away) and mlua's records.
/// Every block of the state is counted into `account`; the limit is
/// enforced once the caller calls [`Token::arm`]. The collector is stopped (a
/// fresh state holds no garbage): the caller restarts it when the state
/// is ready.
///
/// mlua sees the state as made elsewhere: it never closes it
/// ([`close_state`] does), and expects memory errors from every call
/// that allocates (it protects them).
pub fn new_state(account: Arc<Account>) -> mlua::Result<(mlua::Lua, *mut ffi::lua_State, Token)> {
    let installed = Box::into_raw(Box::new(Installed {
        account,
        armed: Cell::new(false),
        main_block: Cell::new(std::ptr::null_mut()),
        before_last_free: Cell::new(None),
        face_data: Cell::new(std::ptr::null_mut()),
    }));
    let token = Token(installed);
    // SAFETY: `lugo_alloc` is a `lua_Alloc` and `installed` its record,
    // alive until `close_state` (or the failure below) takes it back.
    let l = unsafe { ffi::lua_newstate(lugo_alloc, installed as *mut c_void) };
    if l.is_null() {
        // SAFETY: no state uses the record (none was made).
        drop(unsafe { Box::from_raw(installed) });
        return Err(mlua::Error::MemoryError("not enough memory".into()));
    }
    // mlua records the state unprotected, as one it makes itself: the limit
    // is not armed yet, so only the system running out of memory fails.
    // SAFETY: `l` is the new state, used by this thread alone. Stopping the
    // collector is inert; `open_base` runs under `lua_pcall` (pushing a
    // light C function allocates nothing), so a memory error is returned,
    // not raised. The handle is a clone of mlua's, which `close_state`
    // drops before it closes the state.
    unsafe {
        ffi::lua_gc(l, ffi::LUA_GCSTOP, 0);
        ffi::lua_pushcfunction(l, open_base);
        if ffi::lua_pcall(l, 0, 0, 0) != ffi::LUA_OK {
            close_state(None, l, token);
            return Err(mlua::Error::MemoryError("not enough memory".into()));
        }
        let lua = mlua::Lua::get_or_init_from_ptr(l).clone();
        if let Err(e) = lua.load_std_libs(mlua::StdLib::ALL) {
            close_state(Some(lua), l, token);
            return Err(e);
        }
        // mlua's loader restarts the collector: stopped again, as said.
        ffi::lua_gc(l, ffi::LUA_GCSTOP, 0);
        Ok((lua, l, token))
    }
}

/// Lua's base library, as `luaL_openlibs` opens it (`_G`).
unsafe extern "C-unwind" fn open_base(l: *mut ffi::lua_State) -> std::ffi::c_int {
    // SAFETY: called by `lua_pcall` on `l`, with room for the two values
    // `luaL_requiref` pushes and pops.
    unsafe {
        ffi::luaL_requiref(l, c"_G".as_ptr(), ffi::luaopen_base, 1);
        ffi::lua_pop(l, 1);
    }
    0
}

impl Token {
    /// The allocator record of the state.
    fn record(&self) -> &Installed {
        // SAFETY: the record lives until `close_state` consumes the token,
        // and only the thread that runs or closes the state uses it.
        unsafe { &*self.0 }
    }

    /// From now on the state's heap is held to its account's limit.
    pub fn arm(&self) {
        self.record().armed.set(true);
    }

    /// Keeps `data` for the state, for [`face_data`].
    pub fn set_face_data(&self, data: *mut c_void) {
        self.record().face_data.set(data);
    }

    /// Has `f` run just before the state frees its main block, inside
    /// `lua_close` (after its finalizers).
    pub fn before_last_free(&self, f: Box<dyn FnOnce()>) {
        self.record().before_last_free.set(Some(f));
    }
}

/// What [`Token::set_face_data`] kept for the state `l` (null if nothing).
///
/// # Safety
/// `l` is a thread of a state made by [`new_state`], not closed yet (or
/// being closed by `lua_close`), used by this thread.
#[inline]
pub unsafe fn face_data(l: *mut ffi::lua_State) -> *mut c_void {
    let mut ud = std::ptr::null_mut();
    // SAFETY: `l` is a live thread (the caller's contract); reading its
    // allocator is inert. The state was made by `new_state`: its allocator
    // data is its `Installed`, alive until after `lua_close` returns.
    unsafe {
        ffi::lua_getallocf(l, &mut ud);
        (*(ud as *const Installed)).face_data.get()
    }
}

/// Closes the state `l` made by [`new_state`] with `token`: drops `lua`
/// (lugo's handle), then `lua_close` runs the finalizers and frees every
/// block; [`Token::before_last_free`] runs just before the state's main block is
/// freed, after every finalizer. The account no longer counts the heap.
///
/// # Safety
/// `l` is the state `token` came from, used by no other thread, and no
/// mlua handle or value of it is used after this.
pub unsafe fn close_state(lua: Option<mlua::Lua>, l: *mut ffi::lua_State, token: Token) {
    drop(lua);
    // SAFETY: `token` came from `new_state` for `l` (the caller's contract)
    // and is consumed here, so its record is taken back once, after
    // `lua_close` has made the state's last call to `lugo_alloc`.
    unsafe {
        ffi::lua_close(l);
        let installed = Box::from_raw(token.0);
        installed.account.state_closed();
    }
}

/// The alignment of a block Lua asks for with type tag `tag` (its `osize`
/// for a new block): a full userdata's payload starts 32 bytes into its
/// block when it has no user values, and Rust values put there (mlua's,
/// a host's) may need 16; everything else Lua makes needs 8
/// (`LUAI_MAXALIGN`), which `mi_malloc` gives without the aligned path's
/// padding.
fn align_for(tag: usize) -> usize {
    if tag == ffi::LUA_TUSERDATA as usize {
        16
    } else {
        8
    }
}

/// lugo's `lua_Alloc` (see the Lua manual, `lua_Alloc`): mimalloc,
/// counting into the state's account and refusing growth past its limit
/// once armed. A failed system allocation is also a refusal (Lua raises
/// "not enough memory") rather than an abort. Every block of a state
/// comes from here (`new_state`), so `mi_free` and `mi_realloc` get only
/// blocks of `mi_malloc`/`mi_malloc_aligned`.
///
/// # Safety
/// Called by Lua only, as the allocator `new_state` set, with the `ud` it
/// set and the arguments the `lua_Alloc` contract describes.
unsafe extern "C" fn lugo_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the `Installed` that `new_state` leaked for this
    // state, alive until `close_state` takes it back after `lua_close`;
    // Lua calls this on the state's thread, the only one using the record.
    let installed = unsafe { &*(ud as *const Installed) };
    let account = &installed.account;
    let old = if ptr.is_null() { 0 } else { osize };
    if nsize == 0 {
        if !ptr.is_null() {
            if ptr == installed.main_block.get() {
                if let Some(f) = installed.before_last_free.take() {
                    f();
                }
            }
            // SAFETY: a non-null `ptr` is a live block of this state (the
            // `lua_Alloc` contract), made here by mimalloc.
            unsafe { libmimalloc_sys::mi_free(ptr) };
            account.lua_shrink(osize);
        }
        return std::ptr::null_mut();
    }
    if nsize > old {
        let grow = nsize - old;
        if installed.armed.get() {
            if !account.lua_grow(grow) {
                return std::ptr::null_mut();
            }
        } else {
            account.lua_count(grow);
        }
    }
    // SAFETY: for a new block (`ptr` null) `osize` is its type tag;
    // otherwise `ptr` is a live block of this state, made here by mimalloc
    // (the `lua_Alloc` contract), and a userdata block is never resized
    // (Lua resizes only strings being built, tables' parts, stacks and
    // arrays of prototypes), so `mi_realloc` keeps what it needs.
    let p = unsafe {
        if ptr.is_null() {
            let align = align_for(osize);
            if align > 8 {
                libmimalloc_sys::mi_malloc_aligned(nsize, align)
            } else {
                libmimalloc_sys::mi_malloc(nsize)
            }
        } else {
            libmimalloc_sys::mi_realloc(ptr, nsize)
        }
    };
    if p.is_null() {
        if nsize > old {
            account.lua_shrink(nsize - old);
        }
        return std::ptr::null_mut();
    }
    if ptr.is_null() && installed.main_block.get().is_null() {
        installed.main_block.set(p);
    }
    if nsize < old {
        account.lua_shrink(old - nsize);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_refuses_past_its_limit_and_gives_back_on_drop() {
        let a = Account::root(1000);
        let c1 = a.charge(600).unwrap();
        assert_eq!(a.charge(600).err(), Some(NoMemory));
        assert_eq!(a.used(), 600);
        drop(c1);
        assert_eq!(a.used(), 0);
        let _c2 = a.charge(1000).unwrap();
    }

    #[test]
    fn without_a_limit_nothing_is_counted_or_refused() {
        let a = Account::root(0);
        let c = a.charge(usize::MAX / 2).unwrap();
        assert_eq!(c.bytes(), 0);
        assert_eq!(a.used(), 0);
        let child = Account::child(&a, 0);
        assert!(!child.is_limited());
        assert!(child.hold(1 << 40).is_ok());
    }

    #[test]
    fn a_child_draws_from_its_parent_in_chunks() {
        let parent = Account::root(4 * CHUNK);
        let child = Account::child(&parent, 0);
        let c = child.charge(10).unwrap();
        assert_eq!(parent.held_bytes(), CHUNK, "one chunk reserved");
        let more = child.charge(CHUNK).unwrap();
        assert_eq!(parent.held_bytes(), 2 * CHUNK);
        // The tree as a whole stays within the parent's limit.
        assert!(child.charge(3 * CHUNK).is_err());
        assert!(parent.charge(3 * CHUNK).is_err());
        drop(more);
        drop(c);
        assert!(parent.held_bytes() <= 2 * CHUNK, "chunks go back");
        drop(child);
        assert_eq!(parent.held_bytes(), 0, "a dropped child gives all back");
    }

    #[test]
    fn a_child_keeps_its_own_limit_within_the_parent() {
        let parent = Account::root(100 * CHUNK);
        let child = Account::child(&parent, CHUNK / 2);
        assert!(child.charge(CHUNK / 2 + 1).is_err(), "its own limit");
        let _ok = child.charge(CHUNK / 2).unwrap();
        // A grandchild is bounded by every account above it.
        let grand = Account::child(&child, 0);
        assert!(grand.charge(1).is_err(), "the child has nothing left");
    }

    #[test]
    fn a_charge_grows() {
        let a = Account::root(100);
        let mut c = a.charge(10).unwrap();
        c.grow(80).unwrap();
        assert!(c.grow(20).is_err());
        assert_eq!(c.bytes(), 90);
        assert_eq!(a.used(), 90);
    }
}
