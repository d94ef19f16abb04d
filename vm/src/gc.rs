//! Garbage collection requests: the mechanism behind sysmon's GC policy.
//!
//! sysmon never touches a Lua state. It reads each actor's [`GcState`]
//! (published by the M that runs the actor) and asks for a collection with
//! [`crate::Actor::request_gc`]; the M that next runs the actor collects
//! before its first G, between slices. An idle actor is scheduled for it.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};

pub use lugo_sysmon::policy::{ActorHeap, GcKind};

/// What an actor publishes for sysmon, and its pending request.
#[derive(Default)]
pub struct GcState {
    /// Bytes of Lua heap when the M last left the actor.
    pub used: AtomicUsize,
    /// Memory limit in bytes (0: none).
    pub limit: AtomicUsize,
    /// Runtime clock (ns) of the last full collection.
    pub last_full: AtomicU64,
    /// Heap bytes right after the last collection (full or step).
    pub after_last: AtomicUsize,
    /// The strongest pending request (0: none).
    request: AtomicU8,
}

impl GcState {
    /// Records a request; keeps the strongest of the pending ones. Returns
    /// whether there was none pending.
    pub(crate) fn request(&self, kind: GcKind) -> bool {
        self.request.fetch_max(kind as u8, Ordering::AcqRel) == 0
    }

    /// Takes the pending request.
    pub(crate) fn take(&self) -> Option<GcKind> {
        GcKind::from_u8(self.request.swap(0, Ordering::AcqRel))
    }

    /// Whether a request is pending.
    pub fn pending(&self) -> bool {
        self.request.load(Ordering::Acquire) != 0
    }

    /// Records a collection that just ended, leaving `heap` bytes: a full
    /// one (ended at `full_at`, runtime clock) also restarts the clock of
    /// the periodic collection.
    pub(crate) fn collected(&self, full_at: Option<u64>, heap: usize) {
        if let Some(t) = full_at {
            self.last_full.store(t, Ordering::Relaxed);
        }
        self.after_last.store(heap, Ordering::Relaxed);
    }
}

/// Collections run, by cause (`runtime.stats()`).
#[derive(Default)]
pub struct GcCounts {
    /// `runtime.gc()` calls.
    pub user: AtomicU64,
    /// Periodic full cycles.
    pub periodic: AtomicU64,
    /// Full cycles near the memory limit.
    pub limit: AtomicU64,
    /// Incremental steps of idle actors.
    pub idle_steps: AtomicU64,
}

impl GcCounts {
    pub(crate) fn count(&self, kind: GcKind) {
        let c = match kind {
            GcKind::IdleStep => &self.idle_steps,
            GcKind::Periodic => &self.periodic,
            GcKind::Limit => &self.limit,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// Full cycles of every cause.
    pub fn full_cycles(&self) -> u64 {
        self.user.load(Ordering::Relaxed)
            + self.periodic.load(Ordering::Relaxed)
            + self.limit.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_strongest_request() {
        let s = GcState::default();
        assert!(s.request(GcKind::IdleStep), "first request");
        assert!(!s.request(GcKind::Limit));
        assert!(!s.request(GcKind::Periodic));
        assert_eq!(s.take(), Some(GcKind::Limit));
        assert_eq!(s.take(), None);
        assert!(!s.pending());
    }
}
