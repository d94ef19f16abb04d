//! P: a scheduling context. Holds a bounded run queue of actors and the
//! progress counters that sysmon compares between its rounds (Go's
//! `sysmontick`: counters, not timestamps, on the hot path).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

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
    /// The Lua thread its M runs, for preemption.
    pub running: crate::preempt::Running,
}

impl P {
    pub(crate) fn new(id: usize) -> P {
        P {
            id,
            runq: Mutex::new(VecDeque::new()),
            schedtick: AtomicU64::new(0),
            syscalltick: AtomicU64::new(0),
            running: crate::preempt::Running::default(),
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

    /// Schedule ticks so far.
    pub fn ticks(&self) -> u64 {
        self.schedtick.load(Ordering::Relaxed)
    }
}
