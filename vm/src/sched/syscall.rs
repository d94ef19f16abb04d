//! Blocking calls and P handoff (Go's `entersyscall`, `exitsyscall`,
//! `handoffp`).
//!
//! Protocol (the states are [`super::p::PStatus`]):
//! 1. A goroutine about to block in a call that is not lugo's own parking
//!    (`io.read` on a pipe, `os.execute`) marks its M's P `Syscall` and bumps
//!    its `syscalltick`. Its M keeps the actor's Lua state: the actor's
//!    other goroutines wait, as in a Go program whose thread is in C.
//! 2. sysmon, by the seed's rules, moves a P from `Syscall` to `Handed` and
//!    gives it to a spare M, which runs the P's other actors and fires its
//!    timers meanwhile.
//! 3. Back from the call, the home M takes the fast path (`Syscall` to
//!    `Running`) or asks for its P back (`Reclaim`) and waits: the spare gives it back
//!    after its current goroutine (at most a preemption slice later).
//!
//! A spare M that itself blocks does not hand its borrowed P on: that P
//! waits for the call, as a P without handoff would. A host thread running
//! a call inline (`super::callin`) is the M of its borrowed P here: its
//! blocking calls hand the P off the same way, and it gets it back lent.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::m;
use super::p::PStatus;
use super::{lock, Runtime, Shared};
use crate::lockrank::{Lock, Rank};
use crate::preempt::Running;

/// How often an idle spare M looks for work and for its P being reclaimed.
const SPARE_POLL: Duration = Duration::from_millis(1);

/// A spare M: a thread that serves a P handed off by sysmon.
pub(crate) struct Spare {
    thread: std::thread::Thread,
    /// The P it is to serve next.
    assigned: Lock<Option<usize>>,
    /// Its running slot (leaked: Ps point at it while it serves them).
    slot: &'static Running,
}

impl Spare {
    /// Wakes the spare (it looks for an assignment or the runtime's stop).
    pub(crate) fn unpark(&self) {
        self.thread.unpark();
    }
}

thread_local! {
    static IS_SPARE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Shared {
    fn spare_main(self: &Arc<Self>, me: &Arc<Spare>) {
        IS_SPARE.set(true);
        me.slot.bind(self.config.face.hidden_source.as_bytes());
        loop {
            let pid = loop {
                if self.stopping() {
                    self.live_ms.fetch_sub(1, Ordering::AcqRel);
                    return;
                }
                if let Some(p) = lock(&me.assigned).take() {
                    break p;
                }
                std::thread::park();
            };
            let p = &self.ps[pid];
            m::set_current_p(Some(pid));
            p.serve(me.slot);
            while !self.stopping() && p.status.get() == PStatus::Handed {
                match self.try_find(pid) {
                    Some(a) => self.run(pid, &a),
                    None => std::thread::park_timeout(SPARE_POLL),
                }
            }
            p.serve_holder();
            m::set_current_p(None);
            if p.status.give_back() {
                // A lent P's holder is a host thread, which polls for it
                // (`exit_syscall`); its parked home M parks on.
                if let Some(t) = p.home_thread.get() {
                    t.unpark();
                }
            }
            lock(&self.spares).push(me.clone());
        }
    }
}

impl Runtime {
    /// Marks the calling M's P as in a blocking call (step 1). Returns the
    /// P to give to [`Runtime::exit_syscall`], or `None` when the caller is
    /// not an M that can hand its P off (then nothing changes).
    pub fn enter_syscall(&self) -> Option<usize> {
        if IS_SPARE.get() {
            return None;
        }
        let pid = m::current_p()?;
        let p = &self.shared.ps[pid];
        p.syscalltick.fetch_add(1, Ordering::Relaxed);
        p.status.enter_syscall();
        crate::trace::instant("blocking call");
        Some(pid)
    }

    /// The blocking call is over (step 3): returns once this M holds its P
    /// again.
    pub fn exit_syscall(&self, pid: usize) {
        crate::trace::instant("blocking call returned");
        let p = &self.shared.ps[pid];
        if p.status.exit_syscall() {
            return;
        }
        p.status.reclaim();
        // Preempt whatever the spare runs, so it notices soon.
        p.slot().signal();
        while p.status.get() != p.status.held() && !self.stopping() {
            std::thread::park_timeout(SPARE_POLL);
        }
    }
}

impl Shared {
    /// Hands P `p`, whose M is in a blocking call, to a spare M (step 2,
    /// sysmon's request). False if the call has ended meanwhile.
    pub(super) fn handoff(self: &Arc<Self>, p: usize) -> bool {
        let shared = self;
        if !shared.ps[p].status.hand_off() {
            return false;
        }
        crate::trace::instant("hand-off");
        let spare = lock(&shared.spares).pop();
        let spare = match spare {
            Some(s) => s,
            None => {
                let (tx, rx) = std::sync::mpsc::channel();
                let sh = shared.clone();
                shared.live_ms.fetch_add(1, Ordering::AcqRel);
                std::thread::Builder::new()
                    .name("lugo-spare-m".into())
                    .stack_size(super::M_STACK_BYTES)
                    .spawn(move || {
                        let me = Arc::new(Spare {
                            thread: std::thread::current(),
                            assigned: Lock::new(Rank::SpareAssigned, None),
                            slot: Box::leak(Box::new(Running::default())),
                        });
                        let _ = tx.send(me.clone());
                        sh.spare_main(&me);
                    })
                    .expect("cannot start a spare M");
                rx.recv().expect("a new spare M reports in")
            }
        };
        *lock(&spare.assigned) = Some(p);
        spare.thread.unpark();
        shared.census.stats.handoffs.fetch_add(1, Ordering::Relaxed);
        true
    }
}
