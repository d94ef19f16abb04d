//! Host calls run inline (Go's `cgocallback`): a host thread that calls a
//! Lua function of an actor and waits for it runs the goroutine itself,
//! as that actor's M, when a P is free. No thread is woken unless the
//! goroutine parks or leaves other work behind.
//!
//! A call inline ([`HostCall`]):
//! 1. borrows the P of an idle M (`Shared::lend_p`: `Idle` to `Lent`,
//!    the M taken off `parked` and out of `nidle`, so the host thread
//!    counts as that P's running M for checkdead). An M woken but not yet
//!    running counts as idle: on a busy machine it may wait long for a
//!    core, and its P is free meanwhile;
//! 2. claims the actor as an M takes it off a run queue (its `scheduled`
//!    flag), so the call's new G is not queued for an M;
//! 3. binds the P's `borrower` slot, which the P then shows to sysmon:
//!    the call is preempted after its slice, stopped by a CPU budget or an
//!    interrupt, exactly as on an M;
//! 4. runs the actor (`Shared::run_actor` with the call's G) until that G
//!    has ended, or the actor has nothing runnable (the G parked on
//!    something outside it: the host then waits for it as for any task),
//!    or its slice is over. The actor's other Gs run meanwhile, as on an
//!    M (a call that asks a server goroutine of its own actor runs both);
//!    what is left when the call ends goes on the P's queue, for an M;
//! 5. gives the P back (`Shared::return_p`) and wakes an M if the P's
//!    queue or the global one has work, or if every M is idle now and a
//!    deadlock would have someone to tell (one of them checks).
//!
//! An M spinning for work holds its P while it runs nothing: a call that
//! finds no idle P asks it to stop (`host_wants_p`) and waits a moment
//! for its P.
//!
//! Not inline (today's hand-off to an M): no P is free, the actor is
//! queued or running elsewhere, the calling thread is an M or already
//! inside a call, or its stack is too small for Lua's deepest C
//! recursion ([`INLINE_STACK_MIN`]). A blocking call made inline hands
//! the borrowed P off as an M's does (`super::syscall`): the host thread
//! gets it back lent.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{lock, m, Runtime, Shared};
use crate::actor::Actor;

/// The C stack a host thread must have left to run a call inline: as deep
/// as Lua's C-call limit (`LUAI_MAXCCALLS`) lets a script recurse through
/// C functions, twice over. The deepest ways measured (tests/inline.rs)
/// are a `string.gsub` callback and a host function calling back into Lua
/// at every level: under 512 KB optimized, about 3 MB unoptimized. A
/// thread with less hands the call off (in a debug build, a thread of
/// Rust's default 2 MB always does).
pub const INLINE_STACK_MIN: usize = if cfg!(debug_assertions) {
    6 << 20
} else {
    1 << 20
};

/// How long a host call waits for a spinning M to park and free its P
/// before it hands the call off: about what a hand-off costs the host.
const SPINNER_WAIT: Duration = Duration::from_micros(10);

thread_local! {
    /// The lowest address of this thread's stack (0: not looked up yet;
    /// 1: unknown).
    static STACK_LOW: Cell<usize> = const { Cell::new(0) };
}

/// How many bytes of C stack the calling thread has left below this
/// frame (0 if that cannot be told).
fn stack_left() -> usize {
    let mut low = STACK_LOW.get();
    if low == 0 {
        low = stack_low().unwrap_or(1);
        STACK_LOW.set(low);
    }
    let here = &low as *const usize as usize;
    if low == 1 {
        return 0;
    }
    here.saturating_sub(low)
}

/// The lowest address of the calling thread's stack.
fn stack_low() -> Option<usize> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    let (mut addr, mut size) = (std::ptr::null_mut(), 0usize);
    // SAFETY: pthread_getattr_np initialises `attr` for the calling thread
    // when it returns 0; it is read only then, and destroyed after.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let got = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        (got == 0).then_some(addr as usize)
    }
}

/// A call the calling host thread runs inline: it holds a borrowed P and
/// the claimed actor until it is run or dropped.
pub struct HostCall {
    shared: Arc<Shared>,
    /// Not `Send`: the P and its slot are bound to this thread.
    _thread: std::marker::PhantomData<*const ()>,
    pid: usize,
    actor: Arc<Actor>,
    /// Run: the run gave the actor back.
    ran: bool,
}

impl Runtime {
    /// Prepares a call into `actor` that the calling host thread will run
    /// itself ([`HostCall::run`]); `None` when it cannot (see the module's
    /// "Not inline"): the caller starts its goroutine as usual and waits.
    /// Start the call's goroutine after this, before running it.
    pub fn host_call(&self, actor: &Arc<Actor>) -> Option<HostCall> {
        let shared = &self.shared;
        if crate::preempt::current_slot().is_some()
            || shared.stopping()
            || actor.is_closed()
            || stack_left() < INLINE_STACK_MIN
        {
            return None;
        }
        let pid = shared.lend_p().or_else(|| shared.lend_p_from_spinner())?;
        if !actor.claim() {
            shared.return_p(pid);
            return None;
        }
        let p = &shared.ps[pid];
        m::set_current_p(Some(pid));
        p.borrower.bind(shared.config.face.hidden_source.as_bytes());
        p.serve(&p.borrower);
        Some(HostCall {
            shared: shared.clone(),
            _thread: std::marker::PhantomData,
            pid,
            actor: actor.clone(),
            ran: false,
        })
    }
}

impl HostCall {
    /// Runs the actor on this thread until G `gid` (the call's, started
    /// since [`Runtime::host_call`]) has ended or the actor has nothing
    /// runnable, then gives the P back. Call it without holding any lock
    /// of the runtime.
    pub fn run(mut self, gid: u64) {
        let (shared, actor) = (&self.shared, &self.actor);
        let stats = &shared.census.stats;
        stats.inline_calls.fetch_add(1, Ordering::Relaxed);
        actor.with_state(|| shared.run_actor(self.pid, actor, gid));
        self.ran = true;
    }
}

impl Drop for HostCall {
    fn drop(&mut self) {
        if !self.ran {
            // Its goroutine never started (an error before): give the
            // actor back, to the borrowed P's queue if work came meanwhile.
            self.actor.unclaim();
        }
        let p = &self.shared.ps[self.pid];
        p.serve(std::ptr::null());
        p.borrower.unbind_host();
        m::set_current_p(None);
        self.shared.return_p(self.pid);
    }
}

impl Shared {
    /// Borrows the P of an idle M for a host thread (step 1): one parked,
    /// or woken and not yet running (it parks again until the P is back),
    /// but not the timer M's nor the poller's, which sleep for everyone.
    fn lend_p(&self) -> Option<usize> {
        let mut idle = lock(&self.idle);
        let nprocs = self.nprocs().min(self.nstarted());
        let pid = (0..nprocs).rev().find(|&pid| {
            idle.timer_m != Some(pid) && idle.netpoll_m != Some(pid) && self.ps[pid].status.lend()
        })?;
        let parked = idle.parked.len();
        idle.parked.retain(|&(p, _)| p != pid);
        let woken = idle.parked.len() == parked;
        idle.nidle -= 1;
        drop(idle);
        if woken {
            // It was woken for work it will not do now: pass the wake-up
            // on to another idle M.
            self.wake_one();
        }
        Some(pid)
    }

    /// When no P is idle but an M spins for work (it holds its P, runs
    /// nothing, and spins for up to `m::SPIN`): asks it to park now and
    /// borrows its P, waiting at most [`SPINNER_WAIT`] for it.
    fn lend_p_from_spinner(&self) -> Option<usize> {
        if self.spinning.load(Ordering::SeqCst) == 0 {
            return None;
        }
        self.host_wants_p.fetch_add(1, Ordering::SeqCst);
        let start = Instant::now();
        let pid = loop {
            if let Some(pid) = self.lend_p() {
                break Some(pid);
            }
            if start.elapsed() >= SPINNER_WAIT {
                break None;
            }
            for _ in 0..32 {
                std::hint::spin_loop();
            }
        };
        self.host_wants_p.fetch_sub(1, Ordering::SeqCst);
        pid
    }

    /// Gives back a P borrowed by `lend_p` (step 5): its M is parked and
    /// idle again, and an M is woken if there is work, or a deadlock to
    /// look for.
    fn return_p(&self, pid: usize) {
        let p = &self.ps[pid];
        let home = p
            .home_thread
            .get()
            .expect("a lent P's M has started")
            .clone();
        let mut idle = lock(&self.idle);
        p.status.take_back();
        if self.stopping() {
            // `finish` has woken the parked Ms: this one must see it too.
            drop(idle);
            home.unpark();
            return;
        }
        idle.parked.push((pid, home));
        idle.nidle += 1;
        let all_idle = idle.nidle >= self.nstarted();
        drop(idle);
        let work = p.len() > 0 || !self.global_is_empty();
        if work || (all_idle && self.may_deadlock()) {
            self.wake_one();
        }
    }

    /// Whether a deadlock check could tell anyone now (`checkdead`'s
    /// `tell`): the host waits for a task (the call's own, if it parked)
    /// or in `shutdown`, or a program runs.
    fn may_deadlock(&self) -> bool {
        self.host.has_tasks()
            || self.host.shutdown_wait.load(Ordering::Acquire)
            || self.host.program.load(Ordering::Acquire)
    }
}
