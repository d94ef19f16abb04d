//! Preemption: the SIGURG handler and the count hook. This module and
//! [`crate::ffi`] hold every raw call of the vm; each `unsafe` block says
//! why it is sound.
//!
//! Protocol (DESIGN.md section 3, Go's `preemptone` + async preemption):
//! 1. Each M publishes the Lua thread it is running in its [`Running`]
//!    slot: the G's own thread, or the user's nested coroutine inside it
//!    (lugo's `coroutine.resume` updates the slot).
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
//!    tries again once the C call has returned to Lua.
//! 5. A hook yield carries no values, so the hook also sets this thread's
//!    [`take_preempted`] flag: that is how the M (or `coroutine.resume`)
//!    tells a preemption from an ordinary yield.
//!
//! Rejected: a permanent count hook (2.3x slower on tight loops); arming
//! from the sysmon thread directly (a cross-thread write the Lua API does
//! not promise to tolerate; the signal keeps it on the running thread).

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::Once;

use mlua::ffi;

thread_local! {
    /// Set by the hook just before it yields; read by whoever resumed.
    static PREEMPTED: Cell<bool> = const { Cell::new(false) };
    /// The running slot of the M on this thread (null elsewhere).
    static SLOT: Cell<*const Running> = const { Cell::new(ptr::null()) };
}

/// Largest count the hook re-arms with while it cannot yield.
const MAX_REARM: c_int = 1 << 16;

/// Whether the last yield on this thread was a preemption (and clears it).
pub fn take_preempted() -> bool {
    PREEMPTED.replace(false)
}

/// The Lua thread an M is running, published for the signal handler.
pub struct Running {
    lua: AtomicPtr<ffi::lua_State>,
    /// The M's `pthread_t` (0 before the M starts).
    thread: AtomicU64,
}

impl Default for Running {
    fn default() -> Self {
        Running {
            lua: AtomicPtr::new(ptr::null_mut()),
            thread: AtomicU64::new(0),
        }
    }
}

impl Running {
    /// Binds the slot to the calling thread (the M's).
    pub(crate) fn bind(&self) {
        install();
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        self.thread.store(me as u64, Ordering::Release);
        SLOT.set(self as *const Running);
    }

    /// Publishes the Lua thread now running (null: none); returns the
    /// previous one.
    pub fn swap(&self, l: *mut ffi::lua_State) -> *mut ffi::lua_State {
        // Relaxed: the handler runs on this same thread, so it sees program
        // order; other threads only use the slot's address.
        self.lua.swap(l, Ordering::Relaxed)
    }

    /// Publishes the G thread the M starts running. SeqCst: pairs with
    /// sysmon's check before a deep sleep (see the M's loop).
    pub(crate) fn publish(&self, l: *mut ffi::lua_State) {
        self.lua.store(l, Ordering::SeqCst);
    }

    /// The M stopped running Lua. Release is enough: a sysmon that still
    /// sees the old thread preempts a G that has just yielded, harmlessly.
    pub(crate) fn clear(&self) {
        self.lua.store(ptr::null_mut(), Ordering::Release);
    }

    /// Whether the M is running Lua now.
    pub fn is_running(&self) -> bool {
        !self.lua.load(Ordering::SeqCst).is_null()
    }

    /// Asks the M to preempt whatever Lua thread it runs (step 2).
    /// Returns false if the M has not started.
    pub fn signal(&self) -> bool {
        let thread = self.thread.load(Ordering::Acquire);
        if thread == 0 {
            return false;
        }
        let value = libc::sigval {
            sival_ptr: self as *const Running as *mut c_void,
        };
        // SAFETY: `thread` is the pthread_t of a live M (Ms never exit
        // while their runtime can be signalled), and the value points at
        // this slot, which lives as long as the runtime's P table.
        unsafe { libc::pthread_sigqueue(thread as libc::pthread_t, libc::SIGURG, value) == 0 }
    }
}

/// The running slot of the M on this thread, if any.
pub fn current_slot() -> Option<&'static Running> {
    let p = SLOT.get();
    // SAFETY: a bound slot lives in its runtime's P table, which outlives
    // the M thread that bound it.
    (!p.is_null()).then(|| unsafe { &*p })
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

/// Step 3: arm the hook on the running Lua thread.
extern "C" fn on_sigurg(_sig: c_int, info: *mut libc::siginfo_t, _ctx: *mut c_void) {
    // SAFETY: the kernel passes a valid siginfo. Only signals queued by
    // `Running::signal` (SI_QUEUE) carry a slot; any other SIGURG (out of
    // band socket data) is ignored. The slot is alive (see `signal`), and
    // this handler runs on the M that owns it, interrupting it: the thread
    // it names is the one being run, or one this M just stopped running,
    // alive in either case. `lua_sethook` is async-signal-safe by design.
    unsafe {
        if info.is_null() || (*info).si_code != libc::SI_QUEUE {
            return;
        }
        let slot = (*info).si_value().sival_ptr as *const Running;
        if slot.is_null() {
            return;
        }
        let l = (*slot).lua.load(Ordering::Relaxed);
        if !l.is_null() {
            ffi::lua_sethook(l, Some(preempt_hook), ffi::LUA_MASKCOUNT, 1);
        }
    }
}

/// Step 4: yield if possible, else try again later.
unsafe extern "C-unwind" fn preempt_hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    // SAFETY (whole body): Lua calls the hook on the running thread `l`.
    if ffi::lua_isyieldable(l) != 0 {
        ffi::lua_sethook(l, None, 0, 0);
        PREEMPTED.set(true);
        // Inside a hook, lua_yield returns normally and the interpreter
        // yields once the hook has returned: no longjmp crosses this frame.
        ffi::lua_yield(l, 0);
    } else {
        let n = ffi::lua_gethookcount(l)
            .max(1)
            .saturating_mul(2)
            .min(MAX_REARM);
        ffi::lua_sethook(l, Some(preempt_hook), ffi::LUA_MASKCOUNT, n);
    }
}

/// Makes `l` raise `interrupted` at its next instruction (the host asked
/// its goroutine to stop: `lugo_vm::Runtime::interrupt`).
///
/// # Safety
/// `l` is a live thread of an actor owned by the calling M, not running.
pub unsafe fn arm_interrupt(l: *mut ffi::lua_State) {
    ffi::lua_sethook(l, Some(interrupt_hook), ffi::LUA_MASKCOUNT, 1);
}

unsafe extern "C-unwind" fn interrupt_hook(l: *mut ffi::lua_State, _ar: *mut ffi::lua_Debug) {
    // SAFETY (whole body): Lua calls the hook on the running thread `l`;
    // a hook may raise an error (lua.c's SIGINT hook does the same). The
    // message is a plain string: the traceback tells where the line was.
    ffi::lua_sethook(l, None, 0, 0);
    let msg = "interrupted";
    ffi::lua_pushlstring(l, msg.as_ptr() as *const _, msg.len());
    ffi::lua_error(l);
}

/// Disarms a preemption hook left on `l` (armed, then the thread stopped
/// running before it fired), so it does not preempt the next run for
/// nothing. A user's own `debug.sethook` hook is left alone.
///
/// # Safety
/// `l` is a live thread of an actor owned by the calling M, not running.
pub unsafe fn disarm(l: *mut ffi::lua_State) {
    let ours = preempt_hook as ffi::lua_Hook;
    let stop = interrupt_hook as ffi::lua_Hook;
    if ffi::lua_gethook(l)
        .is_some_and(|h| std::ptr::fn_addr_eq(h, ours) || std::ptr::fn_addr_eq(h, stop))
    {
        ffi::lua_sethook(l, None, 0, 0);
    }
}
