//! The census of one runtime: what its actors count and the scheduler
//! reads. Goroutine ids and how many goroutines live (checkdead), the
//! counters of `runtime.stats()`, the errors of actors nobody waited for
//! (dumps). Plain shared data below the actors; no behaviour of the
//! layers above.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::lockrank::{Guard, Lock, Rank};

/// The runtime's counts.
pub struct Census {
    next_gid: AtomicU64,
    ngoroutines: AtomicUsize,
    /// Set when the first goroutine is spawned: before that an idle
    /// runtime is not deadlocked, just not started.
    started: AtomicBool,
    /// Counters for `runtime.stats()`.
    pub stats: Stats,
    /// Errors that ended actors nobody waited for.
    pub unobserved: Unobserved,
}

impl Default for Census {
    fn default() -> Census {
        Census {
            next_gid: AtomicU64::new(1),
            ngoroutines: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            stats: Stats::default(),
            unobserved: Unobserved::default(),
        }
    }
}

impl Census {
    /// Counts a new goroutine and returns its id (1 is the first).
    pub(crate) fn goroutine_started(&self) -> u64 {
        let id = self.next_gid.fetch_add(1, Ordering::Relaxed);
        self.ngoroutines.fetch_add(1, Ordering::Relaxed);
        self.started.store(true, Ordering::Release);
        id
    }

    /// Counts `n` goroutines that have ended.
    pub(crate) fn goroutines_ended(&self, n: usize) {
        self.ngoroutines.fetch_sub(n, Ordering::AcqRel);
    }

    /// Goroutines alive.
    pub fn goroutines(&self) -> usize {
        self.ngoroutines.load(Ordering::Acquire)
    }

    /// Whether any goroutine was ever started.
    pub(crate) fn any_started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }
}

fn lock<T>(m: &Lock<T>) -> Guard<'_, T> {
    m.lock()
}

/// Counters reported by `runtime.stats()`.
#[derive(Default)]
pub struct Stats {
    /// Goroutines preempted by sysmon.
    pub preemptions: AtomicU64,
    /// Rounds of the system monitor.
    pub sysmon_ticks: AtomicU64,
    /// Ps handed to a spare M while their M was in a blocking call.
    pub handoffs: AtomicU64,
    /// Host calls run inline, on the calling host thread (`sched::callin`).
    pub inline_calls: AtomicU64,
    /// Garbage collections, by cause.
    pub gc: crate::gc::GcCounts,
    /// Leak checks' pieces of work run by the Ms (probe steps, leaked
    /// goroutines described), and the longest in ns: the longest pause a
    /// check has made an actor's goroutines wait.
    pub leak_jobs: AtomicU64,
    /// See `leak_jobs`.
    pub leak_job_max_ns: AtomicU64,
    /// As `leak_job_max_ns`, since the last check began.
    pub leak_job_last_ns: AtomicU64,
}

impl Stats {
    /// Counts a leak check's piece of work that took `d`.
    pub fn note_job(&self, d: std::time::Duration) {
        self.leak_jobs.fetch_add(1, Ordering::Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.leak_job_max_ns.fetch_max(ns, Ordering::Relaxed);
        self.leak_job_last_ns.fetch_max(ns, Ordering::Relaxed);
    }
}

/// Errors that ended actors nobody has waited for: a deadlock or a
/// SIGQUIT dump lists them (`actor 2 exited: <error>`), since such an
/// error is often why the rest of the program waits forever. The newest
/// `Unobserved::KEEP` are kept, and how many more there were.
pub struct Unobserved {
    errors: Lock<(VecDeque<(u64, String)>, usize)>,
}

impl Default for Unobserved {
    fn default() -> Unobserved {
        Unobserved {
            errors: Lock::new(Rank::Unobserved, Default::default()),
        }
    }
}

impl Unobserved {
    /// Errors kept.
    const KEEP: usize = 16;

    pub(crate) fn record(&self, id: u64, err: &str) {
        let mut e = lock(&self.errors);
        if e.0.len() == Self::KEEP {
            e.0.pop_front();
            e.1 += 1;
        }
        e.0.push_back((id, err.to_string()));
    }

    pub(crate) fn forget(&self, id: u64) {
        lock(&self.errors).0.retain(|(a, _)| *a != id);
    }

    /// The lines of a dump.
    pub(crate) fn report(&self) -> String {
        let e = lock(&self.errors);
        let mut out = String::new();
        if e.1 > 0 {
            out.push_str(&format!("\n({} more actors exited with errors)\n", e.1));
        }
        for (id, err) in &e.0 {
            // The message, then its goroutine's stack indented under it.
            let mut lines = err.lines().filter(|l| !l.trim().is_empty());
            out.push_str(&format!(
                "\nactor {id} exited: {}\n",
                lines.next().unwrap_or("")
            ));
            for l in lines {
                out.push('\t');
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}
