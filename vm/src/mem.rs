//! Memory accounts: what each actor's memory limit covers.
//!
//! An actor's [`Account`] counts its Lua heap (lugo's allocator is the
//! state's allocator, [`install`]) and what the runtime holds for it
//! ([`Account::charge`]): buffered channel slots, copies of its values on
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

use std::alloc::{alloc, dealloc, realloc, Layout};
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

/// The alignment of every Lua block (mlua's `SYS_MIN_ALIGN`: blocks made
/// by mlua's allocator before [`install`] are freed by lugo's, and the
/// other way round after [`uninstall`]).
const ALIGN: usize = ffi::SYS_MIN_ALIGN;

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

/// What lugo's allocator needs of a state: its account and mlua's
/// allocator, to put back before mlua closes the state.
struct Installed {
    account: Arc<Account>,
    mlua_alloc: ffi::lua_Alloc,
    mlua_ud: *mut c_void,
}

/// Makes lugo's allocator the allocator of the state `l` (its main
/// thread), counting into `account`; returns what [`uninstall`] needs.
/// The heap the state has already is counted from now on.
///
/// mlua is told first that memory errors can happen (a limit it never
/// reaches), so it protects every call that may allocate.
///
/// # Safety
/// `l` is a state of `lua`, used by no other thread now.
pub unsafe fn install(lua: &mlua::Lua, l: *mut ffi::lua_State, account: Arc<Account>) -> Token {
    let _ = lua.set_memory_limit(isize::MAX as usize);
    let mut mlua_ud = std::ptr::null_mut();
    // SAFETY: `l` is a valid state used by no other thread (the caller's
    // contract); reading its allocator and its heap size is inert.
    let (mlua_alloc, now) = unsafe {
        let mlua_alloc = ffi::lua_getallocf(l, &mut mlua_ud);
        let now = ffi::lua_gc(l, ffi::LUA_GCCOUNT, 0) as usize * 1024
            + ffi::lua_gc(l, ffi::LUA_GCCOUNTB, 0) as usize;
        (mlua_alloc, now)
    };
    account.lua.store(now, Ordering::Relaxed);
    let installed = Box::into_raw(Box::new(Installed {
        account,
        mlua_alloc,
        mlua_ud,
    }));
    // SAFETY: no other thread uses `l` (the caller's contract), so no
    // allocation runs while the allocator changes (`lua_setallocf` is
    // inert). `installed` stays alive until `uninstall` takes it back,
    // so `lugo_alloc`'s `ud` is valid whenever Lua calls it; the blocks
    // mlua's allocator made have `ALIGN`, as `lugo_alloc` assumes.
    unsafe { ffi::lua_setallocf(l, lugo_alloc, installed as *mut c_void) };
    Token(installed)
}

/// What [`install`] changed, to undo it.
pub struct Token(*mut Installed);

// SAFETY: the token is an address, used by the one thread that closes
// the state (actor invariant 2).
unsafe impl Send for Token {}
// SAFETY: as above.
unsafe impl Sync for Token {}

/// Puts mlua's allocator back before mlua closes the state (mlua frees
/// its own bookkeeping only when it finds its allocator), and tells the
/// account the heap is gone.
///
/// # Safety
/// `l` is the state `token` came from, used by no other thread, and about
/// to be closed.
pub unsafe fn uninstall(l: *mut ffi::lua_State, token: Token) {
    // SAFETY: `token` came from `install` for `l` (the caller's contract)
    // and is consumed here, so its `Installed` is taken back once, and no
    // other thread uses `l`: no allocation runs while mlua's allocator is
    // put back (inert), and none reaches `lugo_alloc` with the freed `ud`
    // after it (the blocks it made have `ALIGN`, as mlua's allocator
    // assumes).
    unsafe {
        let installed = Box::from_raw(token.0);
        ffi::lua_setallocf(l, installed.mlua_alloc, installed.mlua_ud);
        installed.account.state_closed();
    }
}

/// lugo's `lua_Alloc` (see the Lua manual, `lua_Alloc`): the system
/// allocator with mlua's layout, counting into the state's account and
/// refusing growth past its limit. A failed system allocation is also a
/// refusal (Lua raises "not enough memory") rather than an abort.
///
/// # Safety
/// Called by Lua only, as the allocator `install` set, with the `ud` it
/// set and the arguments the `lua_Alloc` contract describes.
unsafe extern "C" fn lugo_alloc(
    ud: *mut c_void,
    ptr: *mut c_void,
    osize: usize,
    nsize: usize,
) -> *mut c_void {
    // SAFETY: `ud` is the `Installed` that `install` leaked for this state,
    // alive until `uninstall` (which puts mlua's allocator back first);
    // Lua calls this on the state's thread, and only reads `account` here.
    let account = unsafe { &(*(ud as *const Installed)).account };
    let old = if ptr.is_null() { 0 } else { osize };
    if nsize == 0 {
        if !ptr.is_null() {
            // SAFETY: a non-null `ptr` is a live block of this state, of
            // `osize` bytes (the `lua_Alloc` contract), made by this
            // allocator or mlua's, both with the global allocator and
            // `ALIGN`; so the layout is the one it was made with.
            unsafe {
                dealloc(
                    ptr as *mut u8,
                    Layout::from_size_align_unchecked(osize, ALIGN),
                )
            };
            account.lua_shrink(osize);
        }
        return std::ptr::null_mut();
    }
    if nsize > isize::MAX as usize - ALIGN {
        return std::ptr::null_mut();
    }
    if nsize > old && !account.lua_grow(nsize - old) {
        return std::ptr::null_mut();
    }
    // SAFETY: `nsize` is not zero and, checked above, rounds up to
    // `ALIGN` (a power of two) without passing `isize::MAX`: a valid
    // layout. For a new block (`ptr` null) `osize` is a type tag, unused;
    // otherwise `ptr` is a live block of `osize` bytes made with `ALIGN`
    // by the global allocator (as for `dealloc` above).
    let p = unsafe {
        if ptr.is_null() {
            alloc(Layout::from_size_align_unchecked(nsize, ALIGN))
        } else {
            realloc(
                ptr as *mut u8,
                Layout::from_size_align_unchecked(osize, ALIGN),
                nsize,
            )
        }
    };
    if p.is_null() {
        if nsize > old {
            account.lua_shrink(nsize - old);
        }
        return std::ptr::null_mut();
    }
    if nsize < old {
        account.lua_shrink(old - nsize);
    }
    p as *mut c_void
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
