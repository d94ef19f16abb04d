//! Preemption and stop requests: the SIGURG handler and the count hooks.
//! This module and [`crate::ffi`] hold every raw call of the vm; each
//! `unsafe` block says why it is sound.
//!
//! Protocol (DESIGN.md section 3, Go's `preemptone` + async preemption):
//! 1. Each M publishes the Lua thread it is running in its [`Running`]
//!    slot, with the G's id: the G's own thread, or the user's nested
//!    coroutine inside it (lugo's `coroutine.resume` updates the slot).
//! 2. sysmon decides a G has run too long and calls [`Running::signal`]:
//!    `pthread_sigqueue(SIGURG)` to the M's thread, carrying the slot.
//! 3. The handler, on that thread, arms a count hook on the slot's thread:
//!    `lua_sethook(L, hook, LUA_MASKCOUNT, 1)`, the one Lua call that is
//!    safe in a signal handler. No hook is installed otherwise: a count
//!    hook slows every instruction (DESIGN.md section 7).
//! 4. At the next instruction the hook disarms itself and yields, if the
//!    thread can yield: the G's own thread yields to its M; a nested
//!    coroutine yields to lugo's `coroutine.resume`, which forwards the
//!    preemption outward like a park. Inside a C call (a `table.sort`
//!    comparator) it cannot: the hook re-arms with a doubled count and
//!    tries again once the C call has returned to Lua. Fairness may wait.
//! 5. A hook yield carries no values, so the hook also sets this thread's
//!    [`take_preempted`] flag: that is how the M (or `coroutine.resume`)
//!    tells a preemption from an ordinary yield.
//! 6. Lua marks the frame of a hook that yielded (`CIST_HOOKYIELD`) and
//!    clears the mark at the next instruction that finds a line hook set
//!    or a count hook due (ldebug.c, `luaG_traceexec`), which it traces
//!    no further: the instruction re-run after the yield is not reported
//!    twice. With no hook at all after the yield the mark would stay, and
//!    swallow the first event of a line or count hook the script sets
//!    later in that function (`debug.sethook(f, "l")`: its first line).
//!    So a preemption that puts no user's hook back leaves the
//!    *post-yield hook* instead (`post_yield_hook`: count 1), whose due
//!    count clears the mark at the first instruction after the resume and
//!    which then takes itself off. It is the thread's own hook: it needs
//!    nothing of the M that set it, and a goroutine may be resumed by
//!    another. A user's hook with line or count events clears the mark by
//!    itself. Left over: a user's hook with only call and return events,
//!    put back as it was, does not; a line or count hook the script adds
//!    later in the preempted function then misses its first event (as it
//!    does when set from outside on a coroutine suspended by a
//!    preemption).
//!
//! What a script sees of hooks (`debug.gethook`, `debug.sethook`) is its
//! own: lugo's `debug` functions (lugo-stdlib) take lugo's hook off for
//! the look ([`take_off`]) and put it back after ([`put_back`]),
//! chaining whatever hook the script has set meanwhile.
//!
//! Stop requests ([`Stop`]: the host's interrupt, the CPU budget, the
//! runtime's shutdown, `runtime.goexit`) must not wait: a stop is
//! recorded in the slot for the G now running ([`Running::request_stop`])
//! and signalled. The handler then arms the *stop hook*, which raises the
//! stop's error at the G's next Lua instruction, inside C calls too (a
//! raise, unlike a yield, can cross them, as `lua.c`'s Ctrl-C hook
//! does). The error unwinds the G: its `<close>` handlers run, as Go's
//! deferred calls run, and lugo's `pcall`, `xpcall` and coroutine
//! functions pass it on instead of catching it while the stop is pending,
//! so a script cannot keep the G alive. Its handlers get one grace of
//! [`STOP_GRACE`] instructions; should the G still run after it (a
//! `<close>` handler that loops), the hook raises at every instruction.
//! A `debug.sethook` in the stopped G puts the stop's hook back at once,
//! the grace cut short ([`put_back`]).
//! A raise inside a finalizer, whose error Lua turns into a warning, is
//! followed by another at the next instruction. Only lugo's own chunk
//! (`[lugo]`) runs on. `runtime.goexit` is a stop the G asks of itself:
//! its error needs no hook, and its handlers no grace.
//! Lua turns hooks off while a finalizer (`__gc`) runs; the handler turns
//! them back on for a stop (`allow_hooks`), so a looping finalizer is
//! stopped too. Code inside a single C function that runs no Lua (a
//! pathological `string.find` pattern) is stopped when it returns.
//!
//! Rejected: a permanent count hook (2.3x slower on tight loops); arming
//! from the sysmon thread directly (a cross-thread write the Lua API does
//! not promise to tolerate; the signal keeps it on the running thread).

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Once;

use mlua::ffi;

thread_local! {
    /// Set by the hook just before it yields; read by whoever resumed.
    static PREEMPTED: Cell<bool> = const { Cell::new(false) };
    /// The running slot of the M on this thread (null elsewhere).
    static SLOT: Cell<*const Running> = const { Cell::new(ptr::null()) };
    /// The source name (`=` and the chunk name) of the Lua face's own code
    /// in the runtime this M serves (`Face::hidden_source`): a stop is not
    /// raised inside it. Empty: none.
    static HIDDEN_SOURCE: Cell<&'static [u8]> = const { Cell::new(b"") };
    /// Whether a yield of the running coroutine can reach the M: true at
    /// the top of a G; lugo's `coroutine.resume` clears it for a coroutine
    /// it resumes from where no yield can pass (inside a C call), since Lua
    /// lets that coroutine itself yield, to it.
    static FORWARD: Cell<bool> = const { Cell::new(true) };
    /// A user's own hook (`debug.sethook`) that arming the preemption
    /// hook set aside, to put back when that hook fires or is disarmed:
    /// the thread, the hook, its mask and count. Written by the signal
    /// handler, read by the hook, on this one thread.
    static USER_HOOK: Cell<Option<UserHook>> = const { Cell::new(None) };
    /// The preemption came due while a user's line hook is set: it yields
    /// in the line event that follows (see [`preempt_hook`]).
    static DUE: Cell<bool> = const { Cell::new(false) };
    /// The armed hook is for a CPU profile sample: it records the stack
    /// and does not yield (`crate::profile`).
    static SAMPLE: Cell<bool> = const { Cell::new(false) };
}

/// A user's hook set aside: (thread, hook, mask, count).
type UserHook = (*mut ffi::lua_State, ffi::lua_Hook, c_int, c_int);

/// Arms the preemption hook on `l` with `count`, chaining a user's hook:
/// the user's is set aside and its events still reach it (the mask keeps
/// them), and it is put back when ours fires. It replaces the post-yield
/// hook, whose work its count does. (Async-signal-safe: hook getters and
/// setters, and a thread-local store.)
///
/// # Safety
/// `l` is a live thread that this OS thread runs: from a hook or a C
/// function Lua called on it, or from the signal handler that interrupted
/// it (the thread its M's running slot names).
unsafe fn arm_preempt(l: *mut ffi::lua_State, count: c_int) {
    let mut mask = ffi::LUA_MASKCOUNT;
    // `USER_HOOK`'s writes do not interleave: the handler writes it only
    // while `l`'s hook is not ours, the code it interrupts only while it is
    // (`restore_user_hook` writes before its `lua_sethook`). Exceptions: a
    // user's hook set from inside `preempt_hook` (both sides write values of
    // one kind word by word: a mix still holds a stored hook), and `put_back`
    // and `preempt_running`, which the handler interrupts only to store the
    // same value (both arm the running thread, whose hook is unchanged).
    // SAFETY: `l` is live and run by this OS thread (the caller's contract);
    // the hook getters and `lua_sethook` touch fields ldebug.c lets a signal
    // handler set; `USER_HOOK` is a const thread-local without a destructor.
    unsafe {
        match ffi::lua_gethook(l).filter(|&h| !is_post_yield(h)) {
            Some(h) if !is_ours(h) => {
                let user_mask = ffi::lua_gethookmask(l);
                USER_HOOK.set(Some((l, h, user_mask, ffi::lua_gethookcount(l))));
                mask |= user_mask;
            }
            Some(_) => {
                // Ours already: keep the user's events, if any are set aside.
                if let Some((_, _, user_mask, _)) = USER_HOOK.get().filter(|u| u.0 == l) {
                    mask |= user_mask;
                }
            }
            None => USER_HOOK.set(None),
        }
        ffi::lua_sethook(l, Some(preempt_hook), mask, count);
    }
}

/// Puts back the user's hook set aside for `l` (or none; just before a
/// preemption's yield, `after_yield`, the post-yield hook instead: see
/// the module comment, step 6).
///
/// # Safety
/// `l` is a live thread that this OS thread runs now (from lugo's hook)
/// or owns while it is not running.
unsafe fn restore_user_hook(l: *mut ffi::lua_State, after_yield: bool) {
    DUE.set(false);
    // Our hook is set until the `lua_sethook` below (`disarm` checks; in
    // `preempt_hook`, unless the user's hook replaced it), so a SIGURG
    // handler that runs before it only reads `USER_HOOK`.
    // SAFETY: `l` is live and only this OS thread touches it (the caller's
    // contract); `lua_sethook` is the write a signal handler may also make
    // (`arm_preempt`): both are whole-word stores of hooks Lua may call, and
    // the hook put back is one `arm_preempt` set aside, one Lua called.
    unsafe {
        match USER_HOOK.get().filter(|u| u.0 == l) {
            Some((_, h, mask, count)) => {
                USER_HOOK.set(None);
                ffi::lua_sethook(l, Some(h), mask, count);
            }
            None if after_yield => {
                ffi::lua_sethook(l, Some(post_yield_hook), ffi::LUA_MASKCOUNT, 1);
            }
            None => {
                ffi::lua_sethook(l, None, 0, 0);
            }
        }
    }
}

/// The hook a preemption's yield leaves when it puts no user's hook back
/// (module comment, step 6). Lua does not call it at the first
/// instruction after the resume (its count, due, clears the yield's mark
/// instead), but at the second: it takes itself off, leaving no hook. The
/// preemption hook, armed meanwhile, replaces it, and does its work.
///
/// # Safety
/// Called by Lua only, as the hook of the running thread `l`.
unsafe extern "C-unwind" fn post_yield_hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    // SAFETY: `l` is the running thread (the contract); a hook may remove
    // itself (`lua_sethook` is the write a signal handler may also make,
    // and a handler that interrupts it arms the preemption hook, before or
    // after: either way a hook Lua may call is left).
    unsafe { ffi::lua_sethook(l, None, 0, 0) };
}

/// Whether `h` is one of lugo's armed hooks: the preemption hook or the
/// stop hook (not the post-yield hook, which has nothing left to do but
/// take itself off).
fn is_ours(h: ffi::lua_Hook) -> bool {
    std::ptr::fn_addr_eq(h, preempt_hook as ffi::lua_Hook)
        || std::ptr::fn_addr_eq(h, stop_hook as ffi::lua_Hook)
}

/// Whether `h` is the post-yield hook.
fn is_post_yield(h: ffi::lua_Hook) -> bool {
    std::ptr::fn_addr_eq(h, post_yield_hook as ffi::lua_Hook)
}

/// Which of lugo's hooks a thread has (see [`take_off`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LugoHook {
    /// None: the user's own hook, or no hook.
    None,
    /// The preemption hook, armed with this count: a preemption is due.
    Preempt(c_int),
    /// The stop hook.
    Stop,
    /// The post-yield hook (module comment, step 6).
    PostYield,
}

/// Which of lugo's hooks `h` (a thread's hook, with its count) is.
fn classify(h: Option<ffi::lua_Hook>, count: c_int) -> LugoHook {
    match h {
        Some(h) if std::ptr::fn_addr_eq(h, preempt_hook as ffi::lua_Hook) => {
            LugoHook::Preempt(count)
        }
        Some(h) if std::ptr::fn_addr_eq(h, stop_hook as ffi::lua_Hook) => LugoHook::Stop,
        Some(h) if is_post_yield(h) => LugoHook::PostYield,
        _ => LugoHook::None,
    }
}

/// Which of lugo's hooks `l` has now.
///
/// # Safety
/// `l` is a live thread of an actor owned by the calling M.
pub unsafe fn lugo_hook(l: *mut ffi::lua_State) -> LugoHook {
    // SAFETY: `l` is live (the caller's contract); the getters read two of
    // its fields (inert).
    unsafe { classify(ffi::lua_gethook(l), ffi::lua_gethookcount(l)) }
}

/// For a script's look at `l`'s hook (`debug.gethook`): takes lugo's
/// preemption or post-yield hook off `l` and sets the user's own in its
/// place (the one set aside on this M, or none), so that Lua's function
/// answers as if lugo had none. A stop's hook stays. Returns what `l` had,
/// for [`put_back`], which the caller must call after the look (unless it
/// raised: then a preemption is lost, and sysmon asks again).
///
/// # Safety
/// `l` is a live thread of an actor owned by the calling M, the running
/// thread or one that is not running.
pub unsafe fn take_off(l: *mut ffi::lua_State) -> LugoHook {
    // SAFETY: `l` is live and touched by this OS thread only (the caller's
    // contract): `lua_sethook` may be called on it, also while it runs (a
    // C function runs now); a signal handler that interrupts the call arms
    // the preemption hook before or after it, and `put_back`'s caller then
    // sees it. The hook put back is one Lua was already calling on `l`.
    unsafe {
        let before = lugo_hook(l);
        match before {
            LugoHook::Preempt(_) => match USER_HOOK.get().filter(|u| u.0 == l) {
                Some((_, h, mask, count)) => ffi::lua_sethook(l, Some(h), mask, count),
                None => ffi::lua_sethook(l, None, 0, 0),
            },
            LugoHook::PostYield => ffi::lua_sethook(l, None, 0, 0),
            LugoHook::Stop | LugoHook::None => {}
        }
        before
    }
}

/// What [`put_back`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Again {
    /// Nothing.
    Nothing,
    /// Arm the preemption hook with this count (chaining the user's).
    Preempt(c_int),
    /// Arm the stop hook, if the stop is still pending, to raise at the
    /// next instruction (a stopped G's handler that replaced it has its
    /// grace cut short).
    Stop,
    /// Set the post-yield hook again.
    PostYield,
}

/// The decision of [`put_back`]: `before` is what `l` had, `now` what it
/// has, `running` whether `l` is the thread running the script,
/// `suspended` whether it is a suspended coroutine (`LUA_YIELD`), and
/// `user_hook` whether a user's hook is set on it now.
fn again(
    before: LugoHook,
    now: LugoHook,
    running: bool,
    suspended: bool,
    user_hook: bool,
) -> Again {
    match before {
        // A preemption due in another thread was due when it ran: dropped
        // (sysmon asks again), as is one a signal has armed again by now.
        LugoHook::Preempt(count) if running && now == LugoHook::None => Again::Preempt(count),
        // A stop goes on in the running thread (a coroutine gets the stop
        // hook again when it is resumed).
        LugoHook::Stop if running && now != LugoHook::Stop => Again::Stop,
        // Only a preempted coroutine not yet resumed may have the yield's
        // mark still (the running thread has run an instruction since).
        LugoHook::PostYield if suspended && !user_hook && now == LugoHook::None => Again::PostYield,
        _ => Again::Nothing,
    }
}

/// After a script's look at or change of `l`'s hook (`debug.gethook`,
/// `debug.sethook`, made while `before` was lugo's hook on it): re-arms
/// what lugo had there, chaining the hook the script has now set. `me`
/// is the thread running the script.
///
/// # Safety
/// `me` is the running thread; `l` is a live thread of the same actor,
/// `me` or one that is not running.
pub unsafe fn put_back(me: *mut ffi::lua_State, l: *mut ffi::lua_State, before: LugoHook) {
    // SAFETY: `l` is live, of an actor this M owns, and run by this OS
    // thread or by none (the caller's contract). The getters are inert;
    // `arm_preempt` and `arm_stop_with` are called only for the running
    // thread `me` (a C function runs on it now), as they require; `lua_sethook`
    // may set a hook on a thread of this M's actor that is not running.
    unsafe {
        let now = lugo_hook(l);
        let user_hook = now == LugoHook::None && ffi::lua_gethook(l).is_some();
        let suspended = ffi::lua_status(l) == ffi::LUA_YIELD;
        match again(before, now, l == me, suspended, user_hook) {
            Again::Nothing => {}
            Again::Preempt(count) => arm_preempt(l, count),
            // At once: a fresh grace each time would let a handler that
            // calls `debug.sethook` in a loop run for ever.
            Again::Stop => {
                if current_slot().and_then(Running::pending_stop).is_some() {
                    arm_stop_with(l, true);
                }
            }
            Again::PostYield => {
                ffi::lua_sethook(l, Some(post_yield_hook), ffi::LUA_MASKCOUNT, 1);
            }
        }
    }
}

/// Whether a park or a preemption in the running Lua thread can reach its
/// G's M: the thread can yield (`lua_isyieldable`) and so can every
/// coroutine that resumed it, up to the G ([`set_forward`]). A park that
/// cannot fails (`attempt to yield across a C-call boundary`) before it
/// queues anything; a preemption waits.
///
/// # Safety
/// `l` is the running thread.
#[inline]
pub unsafe fn can_park(l: *mut ffi::lua_State) -> bool {
    // SAFETY: `l` is the running thread (the caller's contract);
    // `lua_isyieldable` reads one of its fields (inert).
    unsafe { ffi::lua_isyieldable(l) != 0 && FORWARD.get() }
}

/// Sets whether yields of the coroutine about to run can be forwarded to
/// the M (see [`can_park`]); returns the previous value, to restore.
#[inline]
pub fn set_forward(on: bool) -> bool {
    FORWARD.replace(on)
}

/// Largest count the hook re-arms with while it cannot yield.
const MAX_REARM: c_int = 1 << 16;

/// Whether the last yield on this thread was a preemption (and clears it).
#[inline]
pub fn take_preempted() -> bool {
    PREEMPTED.replace(false)
}

/// Why a G must stop (a [`Running::request_stop`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Stop {
    /// The host asked (`Task::interrupt`, Ctrl-C in the REPL).
    Interrupt = 1,
    /// The actor used up its CPU budget.
    Budget = 2,
    /// The runtime is shutting down.
    Shutdown = 3,
    /// `runtime.goexit()`: the goroutine ends, its `<close>` handlers run
    /// (Go's `Goexit` runs its deferred calls).
    Exit = 4,
    /// A leak check found the goroutine leaked and the program reclaims
    /// it (`runtime.reclaim()`, `LUGO_DEBUG=leakcheck=2`): as an
    /// interrupt, with its own message.
    Leaked = 5,
}

impl Stop {
    fn from_u8(v: u8) -> Option<Stop> {
        match v {
            1 => Some(Stop::Interrupt),
            2 => Some(Stop::Budget),
            3 => Some(Stop::Shutdown),
            4 => Some(Stop::Exit),
            5 => Some(Stop::Leaked),
            _ => None,
        }
    }

    /// The error the stopped G raises.
    pub fn message(self) -> &'static str {
        match self {
            Stop::Interrupt => "interrupted",
            Stop::Budget => "cpu budget exceeded",
            Stop::Shutdown => "runtime stopped",
            Stop::Exit => "goexit",
            Stop::Leaked => "goroutine leaked",
        }
    }
}

/// A stop request packs its reason above the G id.
const STOP_SHIFT: u32 = 56;
const GID_MASK: u64 = (1 << STOP_SHIFT) - 1;

/// The Lua thread an M is running, published for the signal handler.
pub struct Running {
    lua: AtomicPtr<ffi::lua_State>,
    /// The M's `pthread_t` (0 before the M starts).
    thread: AtomicU64,
    /// Id of the G being run (0: none).
    gid: AtomicU64,
    /// A stop request for G `gid`: `reason << STOP_SHIFT | gid` (0: none).
    /// It names its G, so a request that arrives after the M moved on to
    /// another G does not touch that one.
    stop: AtomicU64,
    /// Runtime clock (ns) at which the running actor's CPU budget runs
    /// out (`u64::MAX`: no budget), for sysmon.
    budget_end: AtomicU64,
    /// How often the stop hook has raised the pending stop's error
    /// (saturating at 2): see [`stop_hook_count`].
    stop_raises: AtomicU8,
    /// The next signal asks for a CPU profile sample, not a preemption
    /// ([`Running::sample`]).
    sample: AtomicBool,
    /// Signals being queued now ([`Running::signal`]), and signals queued
    /// since the slot was bound: a host thread that unbinds waits for the
    /// first and takes delivery of the second before it goes on
    /// ([`Running::unbind_host`]).
    signalling: AtomicU32,
    signalled: AtomicU32,
}

impl Default for Running {
    fn default() -> Self {
        Running {
            lua: AtomicPtr::new(ptr::null_mut()),
            thread: AtomicU64::new(0),
            gid: AtomicU64::new(0),
            stop: AtomicU64::new(0),
            budget_end: AtomicU64::new(u64::MAX),
            stop_raises: AtomicU8::new(0),
            sample: AtomicBool::new(false),
            signalling: AtomicU32::new(0),
            signalled: AtomicU32::new(0),
        }
    }
}

impl Running {
    /// Binds the slot to the calling thread (the M's), an M of a runtime
    /// whose Lua face's own code has the source name `hidden_source`
    /// (`Face::hidden_source`; empty: none).
    pub(crate) fn bind(&self, hidden_source: &'static [u8]) {
        HIDDEN_SOURCE.set(hidden_source);
        install();
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.thread.store(me as u64, Ordering::Release);
        SLOT.set(self as *const Running);
    }

    /// Unbinds the slot from the calling thread (a host thread that
    /// borrowed one to close states, `Runtime::close`).
    pub(crate) fn unbind(&self) {
        if std::ptr::eq(SLOT.get(), self) {
            SLOT.set(ptr::null());
            HIDDEN_SOURCE.set(b"");
        }
    }

    /// Unbinds the slot from the calling host thread, which borrowed it to
    /// run a call inline (`sched::callin`) and may exit once this returns:
    /// no signal is being queued to it any more, and one queued before was
    /// delivered (it finds no Lua thread published and does nothing).
    pub(crate) fn unbind_host(&self) {
        debug_assert!(self.lua.load(Ordering::Relaxed).is_null());
        self.thread.store(0, Ordering::SeqCst);
        while self.signalling.load(Ordering::SeqCst) > 0 {
            std::hint::spin_loop();
        }
        if self.signalled.swap(0, Ordering::SeqCst) > 0 {
            // A signal queued to this thread is pending now, or was
            // delivered: a system call's return delivers a pending one.
            let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
            // SAFETY: sigpending writes the set it is given; nothing else.
            unsafe { libc::sigpending(set.as_mut_ptr()) };
        }
        self.unbind();
    }

    /// Publishes the Lua thread now running (null: none); returns the
    /// previous one.
    #[inline]
    pub fn swap(&self, l: *mut ffi::lua_State) -> *mut ffi::lua_State {
        // Relaxed, and a load and a store rather than a swap (a locked
        // instruction): only this thread writes the slot, and the handler
        // runs on this same thread, so it sees program order; other
        // threads only use the slot's address.
        let old = self.lua.load(Ordering::Relaxed);
        self.lua.store(l, Ordering::Relaxed);
        old
    }

    /// Publishes the G thread the M starts running, with its id; a stop
    /// request for an earlier G is dropped. The thread's store is SeqCst
    /// (a full barrier, once per switch): it pairs with sysmon's check
    /// before a deep sleep (see the M's loop), and orders the id's store
    /// before the M's look at the host's interrupts, which the host
    /// records before it looks at the slot. The signal handler runs on
    /// this thread: program order is all it needs.
    pub(crate) fn publish(&self, l: *mut ffi::lua_State, gid: u64) {
        self.stop.store(0, Ordering::Relaxed);
        self.stop_raises.store(0, Ordering::Relaxed);
        self.gid.store(gid, Ordering::Relaxed);
        self.lua.store(l, Ordering::SeqCst);
    }

    /// The M stopped running Lua. Release is enough: a sysmon that still
    /// sees the old thread preempts a G that has just yielded, harmlessly.
    pub(crate) fn clear(&self) {
        self.lua.store(ptr::null_mut(), Ordering::Release);
        self.gid.store(0, Ordering::Release);
    }

    /// Whether the M is running Lua now.
    pub fn is_running(&self) -> bool {
        !self.lua.load(Ordering::SeqCst).is_null()
    }

    /// The G the M runs now (0: none).
    pub fn gid(&self) -> u64 {
        self.gid.load(Ordering::Acquire)
    }

    /// When the running actor's CPU budget runs out (`u64::MAX`: never).
    pub fn budget_end(&self) -> u64 {
        self.budget_end.load(Ordering::Relaxed)
    }

    /// Sets when the running actor's CPU budget runs out.
    pub(crate) fn set_budget_end(&self, at: u64) {
        self.budget_end.store(at, Ordering::Relaxed);
    }

    /// Asks the M to stop G `gid` for good, if it runs it now (`gid` 0:
    /// whatever G it runs): records the request and signals. Returns
    /// whether a G was asked.
    pub fn request_stop(&self, gid: u64, why: Stop) -> bool {
        let running = self.gid();
        if running == 0 || (gid != 0 && running != gid) {
            return false;
        }
        let req = (why as u64) << STOP_SHIFT | (running & GID_MASK);
        self.stop.store(req, Ordering::SeqCst);
        self.signal();
        true
    }

    /// Records a stop for the G this M is about to run (the M itself, at
    /// pick: an interrupt that came while the G was parked).
    pub(crate) fn stop_current(&self, why: Stop) {
        let req = (why as u64) << STOP_SHIFT | (self.gid() & GID_MASK);
        self.stop.store(req, Ordering::SeqCst);
    }

    /// The G about to run raises its stop's error itself, first thing (a
    /// park withdrawn by an interrupt: `Wake::Interrupted`): its handlers
    /// get their grace before the stop hook raises again.
    pub(crate) fn stop_raised_once(&self) {
        self.stop_raises.store(1, Ordering::Relaxed);
    }

    /// The stop requested for the G now running, if any.
    #[inline]
    pub fn pending_stop(&self) -> Option<Stop> {
        let req = self.stop.load(Ordering::Acquire);
        if req == 0 || req & GID_MASK != self.gid.load(Ordering::Acquire) & GID_MASK {
            return None;
        }
        Stop::from_u8((req >> STOP_SHIFT) as u8)
    }

    /// Asks the M for a CPU profile sample of the thread it runs
    /// (`crate::profile`): its hook records the stack at the next
    /// instruction and the G goes on. A preemption asked at the same time
    /// may be lost with it (sysmon asks again).
    pub(crate) fn sample(&self) {
        self.sample.store(true, Ordering::Relaxed);
        self.signal();
    }

    /// Asks the M to preempt whatever Lua thread it runs (step 2).
    /// Returns false if the M has not started.
    pub fn signal(&self) -> bool {
        // Counted from before the thread is read until the signal is
        // queued: a host thread unbinding waits for it (`unbind_host`).
        self.signalling.fetch_add(1, Ordering::SeqCst);
        let thread = self.thread.load(Ordering::SeqCst);
        let queued = thread != 0 && {
            self.signalled.fetch_add(1, Ordering::SeqCst);
            let value = libc::sigval {
                sival_ptr: self as *const Running as *mut c_void,
            };
            // SAFETY: `thread` is the pthread_t of a live thread: an M (Ms
            // never exit while their runtime can be signalled), or a host
            // thread bound to the slot, which does not unbind while this
            // call is counted in `signalling`. The value points at this
            // slot, which lives as long as the runtime's P table.
            unsafe { libc::pthread_sigqueue(thread as libc::pthread_t, libc::SIGURG, value) == 0 }
        };
        self.signalling.fetch_sub(1, Ordering::SeqCst);
        queued
    }
}

/// The running slot of the M on this thread, if any.
#[inline]
pub fn current_slot() -> Option<&'static Running> {
    let p = SLOT.get();
    // SAFETY: a bound slot lives in its runtime's P table, which outlives
    // the M thread that bound it.
    (!p.is_null()).then(|| unsafe { &*p })
}

/// The calling M's slot stops publishing `l`, if it publishes it: `l` is
/// about to be freed (its state is being closed while the slot watched its
/// finalizers; lugo's allocator calls this just before it frees the
/// state's main block), and a signal must not arm a hook on it.
pub(crate) fn unpublish(l: *mut ffi::lua_State) {
    if let Some(slot) = current_slot() {
        // Only this thread writes the slot, and the handler runs on it.
        let _ = slot
            .lua
            .compare_exchange(l, ptr::null_mut(), Ordering::SeqCst, Ordering::Relaxed);
    }
}

/// Installs the SIGURG handler, once per process.
fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: a zeroed sigaction is a valid "no flags, empty mask"
        // value; we fill in a handler with the SA_SIGINFO signature.
        // SA_RESTART keeps system calls the M is in from failing with
        // EINTR; SA_ONSTACK is harmless without an alternate stack.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_sigurg as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(libc::SIGURG, &sa, ptr::null_mut());
        }
    });
}

/// Step 3: arm the hook on the running Lua thread: the stop hook if a
/// stop is pending for the G, else the preemption hook.
extern "C" fn on_sigurg(_sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo. Only signals queued by
    // `Running::signal` (SI_QUEUE) carry a slot; any other SIGURG (out of
    // band socket data) is ignored. The slot is alive (see `signal`), and
    // this handler runs on the M that owns it, interrupting it: the thread
    // it names is the one being run, or one this M just stopped running,
    // alive in either case. `lua_sethook` is async-signal-safe by design,
    // and so are atomic loads and the byte store of `allow_hooks`.
    unsafe {
        if info.is_null() || (*info).si_code != libc::SI_QUEUE {
            return;
        }
        let slot = (*info).si_value().sival_ptr as *const Running;
        if slot.is_null() {
            return;
        }
        let l = (*slot).lua.load(Ordering::Relaxed);
        if l.is_null() {
            return;
        }
        if (*slot).pending_stop().is_some() {
            arm_stop(l);
        } else {
            if (*slot).sample.swap(false, Ordering::Relaxed) {
                SAMPLE.set(true);
            }
            arm_preempt(l, 1);
        }
    }
}

/// Step 4: yield if possible, else try again later. Events of a user's
/// hook set aside by [`arm_preempt`] go to it. With a user's line hook,
/// the yield waits for the line event of the same instruction: Lua calls
/// the count hook, then the line hook, for one instruction, and a count
/// hook that yielded would have the user's line hook run in a yielding
/// thread (and the suite's exact hook counts change).
///
/// # Safety
/// Called by Lua only, as the hook of the running thread `l`, with the
/// event's record `ar`.
unsafe extern "C-unwind" fn preempt_hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    let user = USER_HOOK.get().filter(|u| u.0 == l);
    // SAFETY: Lua calls the hook on the running thread `l` with the event's
    // record `ar`, valid during the call (the contract), which the user's
    // hook may read as its own: it is called as Lua would call it, and may
    // raise (a Lua hook function's error), which skips nothing here (`user`
    // and the rest are plain data). A count or line event comes from a Lua
    // function, where `yield_or_rearm` may yield (its contract).
    unsafe {
        if (*ar).event != ffi::LUA_HOOKCOUNT {
            if let Some((_, h, _, _)) = user {
                h(l, ar);
            }
            if (*ar).event == ffi::LUA_HOOKLINE && DUE.replace(false) {
                yield_or_rearm(l);
            }
            return;
        }
        if user.is_some_and(|u| u.2 & ffi::LUA_MASKLINE != 0) {
            DUE.set(true);
            return;
        }
        yield_or_rearm(l);
    }
}

/// The preemption proper: yield now if the thread can (the user's hook
/// back in place), else try again later.
///
/// # Safety
/// Called from [`preempt_hook`] for a count or line event: `l` is the
/// running thread, in a Lua function.
unsafe fn yield_or_rearm(l: *mut ffi::lua_State) {
    // SAFETY: `l` is the running thread, inside our hook called for a Lua
    // function (the caller's contract): what `can_park`, `restore_user_hook`
    // and `arm_preempt` need. `lua_yield` is called only when `can_park`
    // says the thread can yield, so it does not raise; inside a hook of a
    // Lua function it returns normally (ldo.c, `lua_yieldk`), and the
    // interpreter yields once the hook has returned: no `longjmp` crosses
    // this frame. `lua_gethookcount` reads a field (inert).
    unsafe {
        if SAMPLE.replace(false) {
            // A profile's sample: the stack, then the G goes on.
            let hidden = HIDDEN_SOURCE.get();
            let hidden =
                std::str::from_utf8(hidden.strip_prefix(b"=").unwrap_or(hidden)).unwrap_or("");
            crate::profile::record(l, hidden);
            restore_user_hook(l, false);
            return;
        }
        if can_park(l) {
            restore_user_hook(l, true);
            PREEMPTED.set(true);
            // Inside a hook, lua_yield returns normally and the interpreter
            // yields once the hook has returned: no longjmp crosses this frame.
            ffi::lua_yield(l, 0);
        } else {
            let n = ffi::lua_gethookcount(l)
                .max(1)
                .saturating_mul(2)
                .min(MAX_REARM);
            arm_preempt(l, n);
        }
    }
}

/// Arms the stop hook on `l`: it raises at `l`'s next instruction, in a
/// finalizer too (after the first raise, once the grace is spent). A
/// `runtime.goexit` needs no hook: its own error unwinds the G, and
/// nothing of lugo's catches it.
///
/// # Safety
/// `l` is a live thread of an actor owned by the calling M (running, or
/// about to run); also called from the signal handler.
pub unsafe fn arm_stop(l: *mut ffi::lua_State) {
    // SAFETY: the same contract.
    unsafe { arm_stop_with(l, false) };
}

/// [`arm_stop`], or with `at_once` at the next instruction, grace or not.
///
/// # Safety
/// As [`arm_stop`].
unsafe fn arm_stop_with(l: *mut ffi::lua_State, at_once: bool) {
    let Some(slot) = current_slot() else { return };
    if slot.pending_stop() == Some(Stop::Exit) {
        return;
    }
    let count = if at_once {
        1
    } else {
        stop_hook_count(slot.stop_raises.load(Ordering::Relaxed))
    };
    // SAFETY: `l` is a live thread of an actor this M owns, running on this
    // OS thread or about to (the caller's contract; from the signal
    // handler, the one it interrupted): `lua_sethook` may be called then,
    // in a signal handler too (see `arm_preempt`), and `allow_hooks`'s
    // contract holds.
    unsafe {
        ffi::lua_sethook(l, Some(stop_hook), ffi::LUA_MASKCOUNT, count);
        allow_hooks(l);
    }
}

/// The stop hook's instruction count after `raises` raises of the stop's
/// error: at once before the first; then one [`STOP_GRACE`], in which the
/// G's `<close>` handlers run; then at once again, at every instruction,
/// so a handler that loops (or a message handler Lua calls again for
/// each error) is cut short.
fn stop_hook_count(raises: u8) -> c_int {
    if raises == 1 {
        STOP_GRACE
    } else {
        1
    }
}

/// Arms the stop hook on `l` if a stop is pending for the G that `slot`
/// (this M's) runs: lugo's `coroutine.resume` does it around a nested
/// coroutine, since hooks belong to one thread.
///
/// # Safety
/// As [`arm_stop`].
#[inline]
pub unsafe fn arm_stop_if_pending(slot: &Running, l: *mut ffi::lua_State) {
    if slot.pending_stop().is_some() {
        // SAFETY: the caller's contract is `arm_stop`'s.
        unsafe { arm_stop(l) };
    }
}

/// Instructions a stopped G may still run (its `<close>` handlers) before
/// the stop hook raises again (a few milliseconds of Lua).
pub const STOP_GRACE: c_int = 1 << 20;

/// Raises the pending stop's error in the stopped G (but not in lugo's
/// own chunk), and again every [`STOP_GRACE`] instructions while the G
/// runs on (see the module comment).
///
/// # Safety
/// Called by Lua only, as the hook of the running thread `l`, with the
/// event's record `ar`.
unsafe extern "C-unwind" fn stop_hook(l: *mut ffi::lua_State, ar: *mut ffi::lua_Debug) {
    let Some(why) = current_slot().and_then(Running::pending_stop) else {
        // Not for this G (the M moved on): nothing to do any more.
        // SAFETY: `l` is the running thread (the contract); removing its
        // hook from the hook itself is allowed.
        unsafe { ffi::lua_sethook(l, None, 0, 0) };
        return;
    };
    // SAFETY: Lua calls the hook on the running thread `l` with the
    // activation record `ar` of the running function (the contract):
    // `lua_getinfo` fills its "S" part (inert), after which `is_face_chunk`
    // may read it; `in_finalizer` needs the running thread.
    if unsafe { ffi::lua_getinfo(l, c"S".as_ptr(), ar) != 0 && is_face_chunk(ar) } {
        return;
    }
    // SAFETY: as above.
    let count = if unsafe { in_finalizer(l) } {
        // Lua turns a finalizer's error into a warning: this raise ends
        // the finalizer, and the next instruction after it raises again.
        1
    } else {
        let slot = current_slot().expect("a pending stop has a slot");
        let raises = slot
            .stop_raises
            .load(Ordering::Relaxed)
            .saturating_add(1)
            .min(2);
        slot.stop_raises.store(raises, Ordering::Relaxed);
        stop_hook_count(raises)
    };
    let msg = why.message();
    // SAFETY: `l` is the running thread, in a hook, which Lua gives
    // `LUA_MINSTACK` free stack slots, and a hook may raise (lua.c's SIGINT
    // hook does). Nothing of this frame has a destructor (`why`, `msg`,
    // `slot` and `count` are plain data), so the push (which may raise "not
    // enough memory" instead) and `lua_error` skip nothing; `msg` is
    // static. `allow_hooks` gets the running thread.
    unsafe {
        ffi::lua_sethook(l, Some(stop_hook), ffi::LUA_MASKCOUNT, count);
        ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
        // Lua turns hooks off while one runs and turns them back on when it
        // returns; a raise skips that, and a message handler (`xpcall`'s) runs
        // before the error unwinds to a protected call that would restore
        // them. Back on now, or a handler that loops could not be stopped.
        allow_hooks(l);
        ffi::lua_error(l);
    }
}

/// Whether a finalizer (`__gc`) is on `l`'s call stack: Lua names its
/// frame so.
///
/// # Safety
/// `l` is the running thread (a hook's, or a C function's).
pub unsafe fn in_finalizer(l: *mut ffi::lua_State) -> bool {
    // SAFETY: `l` is the running thread (the caller's contract); `ar` is
    // ours (a zeroed `lua_Debug` is a valid one), filled by Lua for each
    // level the stack has; `lua_getstack` and `lua_getinfo` with "n" push
    // nothing and allocate nothing (inert). A non-null `name` points at a
    // NUL-terminated string of the state (a prototype's, or a metamethod's
    // name) that lives while the frame does, through this read.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut level = 0;
        while ffi::lua_getstack(l, level, &mut ar) != 0 {
            if ffi::lua_getinfo(l, c"n".as_ptr(), &mut ar) != 0
                && !ar.name.is_null()
                && std::ffi::CStr::from_ptr(ar.name).to_bytes() == b"__gc"
            {
                return true;
            }
            level += 1;
        }
        false
    }
}

/// Stops the G this M runs now, for `why` (`runtime.goexit`: the G asks
/// it of itself); the caller raises the stop's error. False when this
/// thread runs no G.
pub fn stop_this_g(why: Stop) -> bool {
    match current_slot().filter(|s| s.gid() != 0) {
        Some(s) => {
            s.stop_current(why);
            true
        }
        None => false,
    }
}

/// The stop pending for the G this M runs, if any: whoever catches Lua
/// errors on lugo's behalf (`pcall`, `coroutine.resume`) passes an error
/// on instead while one is.
#[inline]
pub fn stopping_g() -> Option<Stop> {
    current_slot().and_then(Running::pending_stop)
}

/// Whether the function of `ar` (its "S" part read) is the Lua face's own
/// code (lugo's prelude, chunk `[lugo]`), as this M was bound with.
///
/// # Safety
/// `ar` is a valid `lua_Debug` whose "S" part `lua_getinfo` has filled,
/// for a function still on its thread's stack.
unsafe fn is_face_chunk(ar: *const ffi::lua_Debug) -> bool {
    // SAFETY: `ar` is valid and its "S" part filled (the caller's
    // contract): a non-null `source` points at the NUL-terminated source
    // name of a function on the stack (a static string, or one its
    // prototype keeps alive), valid through this read.
    unsafe {
        let src = (*ar).source;
        let hidden = HIDDEN_SOURCE.get();
        !hidden.is_empty() && !src.is_null() && std::ffi::CStr::from_ptr(src).to_bytes() == hidden
    }
}

/// Disarms a preemption or stop hook left on `l` (armed, then the thread
/// stopped running before it fired), so it does not act on the next run
/// for nothing, and puts back the user's own hook it set aside (on this
/// M: the thread may run next on another). The post-yield hook of a
/// thread just preempted stays. Returns whether a preemption was due.
///
/// # Safety
/// `l` is a live thread of an actor owned by the calling M, not running.
pub unsafe fn disarm(l: *mut ffi::lua_State) -> bool {
    // SAFETY: `l` is a live thread of an actor this M owns, not running
    // (the caller's contract): `lua_gethook` reads a field, and
    // `restore_user_hook` may act on a thread its OS thread owns, with
    // lugo's hook set (checked here).
    unsafe {
        // A sample asked for and not taken is dropped with the hook.
        SAMPLE.set(false);
        let before = lugo_hook(l);
        if matches!(before, LugoHook::Preempt(_) | LugoHook::Stop) {
            restore_user_hook(l, false);
        }
        matches!(before, LugoHook::Preempt(_))
    }
}

/// Arms the preemption hook on the running thread `l`: a preemption that
/// was due in a coroutine which has just stopped running goes on in its
/// resumer.
///
/// # Safety
/// `l` is the running thread (a C function of it runs now).
pub unsafe fn preempt_running(l: *mut ffi::lua_State) {
    // SAFETY: `l` is the running thread, run by this OS thread (the
    // caller's contract), as `arm_preempt` requires.
    unsafe { arm_preempt(l, 1) };
}

/// Layout of `lua_State` in Lua 5.4 (lstate.h): `CommonHeader` (a
/// pointer, then the bytes `tt` and `marked`), then the bytes `status`
/// and `allowhook`.
const TT_OFFSET: usize = std::mem::size_of::<*const c_void>();
const STATUS_OFFSET: usize = TT_OFFSET + 2;
const ALLOWHOOK_OFFSET: usize = TT_OFFSET + 3;
/// `LUA_VTHREAD`: the type tag of a thread.
const VTHREAD: u8 = 8;

/// 0: not checked yet; 1: the layout above holds; 2: it does not (then
/// hooks stay off in finalizers).
static LAYOUT: AtomicU8 = AtomicU8::new(0);

/// Checks the layout [`allow_hooks`] relies on against a fresh state's
/// main thread (a thread, status `LUA_OK`, hooks allowed). Once wrong,
/// always off.
///
/// # Safety
/// `l` is a valid, idle thread.
pub(crate) unsafe fn check_layout(l: *mut ffi::lua_State) {
    let b = l as *const u8;
    // SAFETY: `l` is a valid thread (the caller's contract), and the bytes
    // read lie inside its `lua_State` (its header alone is larger). In the
    // layout of the Lua this crate is built with (5.4, mlua's `lua54`) they
    // are the fields `tt`, `status` and `allowhook`, all set before a
    // thread is handed out, so no byte read is uninitialized; the check
    // guards `allow_hooks` against another layout. Nothing else writes
    // them now: the thread is idle and on this OS thread.
    let ok = unsafe {
        *b.add(TT_OFFSET) == VTHREAD
            && *b.add(STATUS_OFFSET) == ffi::LUA_OK as u8
            && *b.add(ALLOWHOOK_OFFSET) == 1
    };
    let _ = LAYOUT.compare_exchange(
        0,
        if ok { 1 } else { 2 },
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    if !ok {
        LAYOUT.store(2, Ordering::Release);
    }
}

/// Turns hooks back on for `l`: Lua turns them off while a finalizer
/// runs (lgc.c, `GCTM`), and a stop must reach a finalizer that loops.
/// Lua restores its own value when the finalizer ends; a hook that raises
/// in it ends the finalizer, which Lua reports as a warning.
///
/// # Safety
/// `l` is a live thread running on this OS thread (or interrupted by this
/// signal handler), or a thread of an actor this M owns, about to run.
unsafe fn allow_hooks(l: *mut ffi::lua_State) {
    if LAYOUT.load(Ordering::Acquire) == 1 {
        // A byte store to a field the interpreter reads before each hook
        // call, on the thread that runs it.
        // SAFETY: `l` is live (the caller's contract), and `check_layout`
        // found `allowhook` at this offset of a thread of this Lua, so the
        // store stays inside `l`'s `lua_State` and hits that byte field.
        // Only this OS thread touches `l` (the contract); from a signal
        // handler the store is a byte store, of the kind Lua accepts of
        // `lua_sethook` there; the interrupted code that saves and restores
        // `allowhook` (a finalizer's call) puts its own value back after.
        unsafe { std::ptr::write_volatile((l as *mut u8).add(ALLOWHOOK_OFFSET), 1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_told_apart() {
        assert_eq!(classify(None, 0), LugoHook::None);
        assert_eq!(classify(Some(preempt_hook), 8), LugoHook::Preempt(8));
        assert_eq!(classify(Some(stop_hook), 1), LugoHook::Stop);
        assert_eq!(classify(Some(post_yield_hook), 1), LugoHook::PostYield);
        unsafe extern "C-unwind" fn user(_: *mut ffi::lua_State, _: *mut ffi::lua_Debug) {}
        assert_eq!(classify(Some(user), 1), LugoHook::None);
        assert!(is_ours(preempt_hook) && is_ours(stop_hook));
        assert!(!is_ours(post_yield_hook) && !is_ours(user));
    }

    #[test]
    fn what_is_put_back_after_a_look_at_hooks() {
        use LugoHook as H;
        // A preemption due in the running thread is armed again, with its
        // count, unless a signal already did (or a stop came).
        assert_eq!(
            again(H::Preempt(4), H::None, true, false, true),
            Again::Preempt(4)
        );
        assert_eq!(
            again(H::Preempt(1), H::None, true, false, false),
            Again::Preempt(1)
        );
        assert_eq!(
            again(H::Preempt(1), H::Preempt(1), true, false, false),
            Again::Nothing
        );
        assert_eq!(
            again(H::Preempt(1), H::Stop, true, false, false),
            Again::Nothing
        );
        // In another thread it is stale: dropped.
        assert_eq!(
            again(H::Preempt(1), H::None, false, true, false),
            Again::Nothing
        );
        assert_eq!(
            again(H::Preempt(1), H::None, false, false, true),
            Again::Nothing
        );
        // A stop's hook is set again on the running thread whatever
        // replaced it; a coroutine gets it when resumed.
        assert_eq!(again(H::Stop, H::None, true, false, true), Again::Stop);
        assert_eq!(again(H::Stop, H::None, true, false, false), Again::Stop);
        assert_eq!(again(H::Stop, H::None, false, true, false), Again::Nothing);
        assert_eq!(again(H::Stop, H::Stop, true, false, false), Again::Nothing);
        // The post-yield hook, only on a preempted coroutine not resumed
        // since, left without a hook.
        assert_eq!(
            again(H::PostYield, H::None, false, true, false),
            Again::PostYield
        );
        assert_eq!(
            again(H::PostYield, H::None, false, true, true),
            Again::Nothing
        );
        assert_eq!(
            again(H::PostYield, H::None, true, false, false),
            Again::Nothing
        );
        assert_eq!(
            again(H::PostYield, H::None, false, false, false),
            Again::Nothing
        );
        assert_eq!(
            again(H::PostYield, H::Preempt(1), false, true, false),
            Again::Nothing
        );
        // Nothing of lugo's: nothing.
        assert_eq!(again(H::None, H::None, true, false, true), Again::Nothing);
        assert_eq!(
            again(H::None, H::Preempt(1), true, false, true),
            Again::Nothing
        );
    }

    #[test]
    fn a_stop_raises_at_once_then_gives_one_grace_then_none() {
        assert_eq!(stop_hook_count(0), 1);
        assert_eq!(stop_hook_count(1), STOP_GRACE);
        assert_eq!(stop_hook_count(2), 1);
    }
}
