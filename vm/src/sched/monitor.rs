//! The mechanism sysmon drives: `lugo_sysmon::policy::Mechanism` over the
//! scheduler's shared state.
//!
//! sysmon decides (its policy is pure, in `lugo-sysmon`); this module only
//! reads what it asks for (P states, timers, heaps) and carries out its
//! requests (preempt, stop, hand off, fire timers, poll, collect). None of
//! it is part of the embedder's API: the runtime starts the monitor itself
//! ([`start`]), so these methods are reachable only through the trait
//! object sysmon holds.
//!
//! Invariant: nothing here touches a Lua state; a request that needs one
//! (a collection, a stop) is recorded for the M that runs the actor.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use lugo_sysmon::policy::{ActorHeap, GcKind, Mechanism, PState};

use super::p::PStatus;
use super::{lock, Shared};
use crate::clock::now_ns;

/// Starts sysmon over `shared`; its mailbox's sender goes to `shared`, so
/// the runtime can wake it (`Shared::wake_sysmon`).
pub(super) fn start(shared: &Arc<Shared>, debug: lugo_sysmon::Debug) {
    if debug.flightrecorder {
        crate::trace::start_flight_recorder();
    }
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let _ = shared.monitor.set(tx);
    lugo_sysmon::start(Monitored(shared.clone(), debug.scheddetail), rx, debug);
}

/// The runtime as sysmon sees it; with schedtrace's detail or not.
struct Monitored(Arc<Shared>, bool);

impl Mechanism for Monitored {
    fn now(&self) -> u64 {
        now_ns()
    }

    fn nprocs(&self) -> usize {
        self.0.watched_procs()
    }

    fn p_state(&self, p: usize) -> PState {
        let p = &self.0.ps[p];
        let slot = p.slot();
        let running = slot.is_running();
        PState {
            running,
            schedtick: p.ticks(),
            syscall: p.status.get() == PStatus::Syscall,
            syscalltick: p.syscalltick.load(Ordering::Relaxed),
            runq: p.len(),
            // When the CPU budget of the actor it runs runs out.
            budget_end: Some(slot.budget_end()).filter(|&e| running && e != u64::MAX),
        }
    }

    fn preempt(&self, p: usize) {
        self.0.ps[p].slot().signal();
    }

    fn stop_over_budget(&self, p: usize) {
        self.0.ps[p]
            .slot()
            .request_stop(0, crate::preempt::Stop::Budget);
    }

    fn handoff(&self, p: usize) {
        self.0.handoff(p);
    }

    fn next_timer(&self) -> Option<u64> {
        self.0.timers.next_deadline()
    }

    fn timer_watched(&self) -> bool {
        self.0.timer_watched.load(Ordering::Acquire)
    }

    fn run_timers(&self, now: u64) -> usize {
        self.0.timers.run_due(now)
    }

    fn schedtrace(&self, ms: u64) {
        let mut out = self.0.schedtrace_line(ms);
        if self.1 {
            out.push_str(&self.0.schedtrace_detail());
        }
        eprintln!("{out}");
    }

    fn actor_heaps(&self) -> Vec<ActorHeap> {
        self.0
            .live_actors()
            .iter()
            .map(|a| ActorHeap {
                id: a.id,
                idle: !a.lock().scheduled,
                used: a.gc.used.load(Ordering::Relaxed),
                limit: a.gc.limit.load(Ordering::Relaxed),
                last_full: a.gc.last_full.load(Ordering::Relaxed),
                after_last: a.gc.after_last.load(Ordering::Relaxed),
                pending: a.gc.pending(),
            })
            .collect()
    }

    fn request_gc(&self, id: u64, kind: GcKind) {
        let a = lock(&self.0.actors)
            .get(&id)
            .and_then(std::sync::Weak::upgrade);
        if let Some(a) = a {
            a.request_gc(kind);
        }
    }

    fn last_netpoll(&self) -> u64 {
        self.0.last_netpoll.load(Ordering::Relaxed)
    }

    fn netpoll(&self, now: u64) -> usize {
        self.0.last_netpoll.store(now, Ordering::Relaxed);
        let np = &self.0.netpoll;
        if np.is_blocked() {
            // An M blocks in the poller: it gets the events.
            return 0;
        }
        np.poll(Some(std::time::Duration::ZERO))
    }

    fn stopping(&self) -> bool {
        self.0.stopping()
    }

    fn any_running(&self) -> bool {
        self.0.any_p_running()
    }

    fn deep_sleep(&self, sleeping: bool) {
        self.0.sysmon_sleeping.store(sleeping, Ordering::SeqCst);
    }

    fn check_leaks(&self, reclaim: bool) {
        let tx = self.0.leak_checker.get_or_init(|| {
            let (tx, rx) = crossbeam_channel::bounded::<bool>(1);
            // A weak hold: the runtime's end drops the mailbox, and the
            // thread ends.
            let shared = Arc::downgrade(&self.0);
            let _ = std::thread::Builder::new()
                .name("lugo-leakcheck".into())
                .spawn(move || super::leaks::checker(shared, rx));
            tx
        });
        // A check under way takes this round's place.
        let _ = tx.try_send(reclaim);
    }

    fn count_round(&self) {
        self.0
            .census
            .stats
            .sysmon_ticks
            .fetch_add(1, Ordering::Relaxed);
        // The CPU profile: a sample of every M that runs Lua, every period.
        if crate::profile::is_active() && crate::profile::due(now_ns()) {
            for p in &self.0.ps[..self.0.watched_procs()] {
                let slot = p.slot();
                if slot.is_running() {
                    slot.sample();
                }
            }
        }
    }
}
