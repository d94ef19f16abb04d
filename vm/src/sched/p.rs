//! P: a scheduling context. Holds a bounded run queue of actors and the
//! progress counters that sysmon compares between its rounds (Go's
//! `sysmontick`: counters, not timestamps, on the hot path).
//!
//! Each P has a home M (its thread, started with it). While the home M is
//! in a blocking call, sysmon may hand the P to a spare M ([`SYSCALL`]
//! states); the home M takes it back when the call returns.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::preempt::Running;

use crate::actor::Actor;

/// Capacity of a P's local run queue; beyond it half the queue moves to the
/// global queue (Go's `runqputslow`), so no P hoards work.
pub const RUNQ_CAP: usize = 256;

/// One processor.
pub struct P {
    /// Index in the runtime's P table.
    pub id: usize,
    runq: Mutex<VecDeque<Arc<Actor>>>,
    /// Bumped each time the P resumes a G.
    pub schedtick: AtomicU64,
    /// Bumped each time the P enters a blocking call.
    pub syscalltick: AtomicU64,
    /// The home M's running slot (the Lua thread it runs, for preemption).
    pub home: Running,
    /// The running slot of the M serving the P now; null: the home M's.
    serving: AtomicPtr<Running>,
    /// The blocking-call state, one of [`SYSCALL`].
    pub syscall: AtomicU8,
    /// The home M's thread, to wake it when its P comes back.
    pub(crate) home_thread: OnceLock<std::thread::Thread>,
}

/// States of [`P::syscall`], and who moves between them:
///
/// | from | to | by |
/// |---|---|---|
/// | `NONE` | `IN` | the home M, entering a blocking call |
/// | `IN` | `NONE` | the home M, leaving it (fast path: P never left) |
/// | `IN` | `HANDED` | sysmon's handoff: a spare M now serves the P |
/// | `HANDED` | `RECLAIM` | the home M, back from its call, wants the P |
/// | `RECLAIM` | `NONE` | the spare, giving the P back (then wakes the home M) |
pub mod syscall_state {
    /// Not in a blocking call.
    pub const NONE: u8 = 0;
    /// The home M is in a blocking call and still holds the P.
    pub const IN: u8 = 1;
    /// A spare M serves the P.
    pub const HANDED: u8 = 2;
    /// The home M waits for the spare to give the P back.
    pub const RECLAIM: u8 = 3;
}
pub use syscall_state as SYSCALL;

impl P {
    pub(crate) fn new(id: usize) -> P {
        P {
            id,
            runq: Mutex::new(VecDeque::new()),
            schedtick: AtomicU64::new(0),
            syscalltick: AtomicU64::new(0),
            home: Running::default(),
            serving: AtomicPtr::new(std::ptr::null_mut()),
            syscall: AtomicU8::new(SYSCALL::NONE),
            home_thread: OnceLock::new(),
        }
    }

    fn q(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Actor>>> {
        self.runq.lock().expect("P run queue poisoned")
    }

    /// Puts `a` at the tail; returns what overflowed (to go to the global queue).
    pub(crate) fn push(&self, a: Arc<Actor>) -> Vec<Arc<Actor>> {
        let mut q = self.q();
        q.push_back(a);
        if q.len() > RUNQ_CAP {
            let n = q.len() / 2;
            q.drain(..n).collect()
        } else {
            Vec::new()
        }
    }

    pub(crate) fn pop(&self) -> Option<Arc<Actor>> {
        self.q().pop_front()
    }

    pub(crate) fn len(&self) -> usize {
        self.q().len()
    }

    /// Takes the older half of the queue (for a thief).
    pub(crate) fn steal_half(&self) -> Vec<Arc<Actor>> {
        let mut q = self.q();
        let n = q.len().div_ceil(2);
        q.drain(..n).collect()
    }

    /// Takes everything (a P being retired by `gomaxprocs`).
    pub(crate) fn drain(&self) -> Vec<Arc<Actor>> {
        self.q().drain(..).collect()
    }

    /// The running slot of the M serving this P now.
    pub fn slot(&self) -> &Running {
        let p = self.serving.load(Ordering::Acquire);
        if p.is_null() {
            &self.home
        } else {
            // SAFETY: `serving` only ever holds the address of a spare M's
            // slot, which is leaked (`'static`) when the spare starts.
            unsafe { &*p }
        }
    }

    /// Makes `slot` (a spare's; null: the home M's) the one serving the P.
    pub(crate) fn serve(&self, slot: *const Running) {
        self.serving.store(slot as *mut Running, Ordering::Release);
    }

    /// Schedule ticks so far.
    pub fn ticks(&self) -> u64 {
        self.schedtick.load(Ordering::Relaxed)
    }
}
