//! P: a scheduling context. Holds a bounded run queue of actors and the
//! progress counters that sysmon compares between its rounds (Go's
//! `sysmontick`: counters, not timestamps, on the hot path).
//!
//! Each P has a home M (its thread, started with it). While the home M is
//! in a blocking call, sysmon may hand the P to a spare M; the home M
//! takes it back when the call returns ([`PStatus`]). While the home M is
//! parked, a host thread may borrow the P to run a call inline (Go's
//! cgocallback; `super::callin`), watched through the P's `borrower`
//! slot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use crate::preempt::Running;

use crate::actor::Actor;
use crate::lockrank::{Guard, Lock, Rank};

/// Capacity of a P's local run queue; beyond it half the queue moves to the
/// global queue (Go's `runqputslow`), so no P hoards work.
pub const RUNQ_CAP: usize = 256;

/// One processor.
pub struct P {
    /// Index in the runtime's P table.
    pub id: usize,
    runq: Lock<VecDeque<Arc<Actor>>>,
    /// Bumped each time the P resumes a G.
    pub schedtick: AtomicU64,
    /// Bumped each time the P enters a blocking call.
    pub syscalltick: AtomicU64,
    /// The home M's running slot (the Lua thread it runs, for preemption).
    pub home: Running,
    /// The slot of a host thread that borrows the P (`PStatus::Lent`).
    pub(crate) borrower: Running,
    /// The running slot of the M serving the P now; null: the home M's.
    serving: AtomicPtr<Running>,
    /// What it is doing.
    pub status: PState,
    /// The home M's thread, to wake it when its P comes back.
    pub(crate) home_thread: OnceLock<std::thread::Thread>,
}

/// What a P is doing (Go's `_Prunning`, `_Pidle`, `_Psyscall`; `Handed`
/// and `Reclaim` are the two halves of Go's `handoffp` and `exitsyscall`
/// slow path). A P at or above `gomaxprocs` is retired whatever its state:
/// its M hands its queue over and idles.
///
/// | from | to | by | method |
/// |---|---|---|---|
/// | `Running` | `Idle` | its M, parking with nothing to run | `PState::park` |
/// | `Idle` | `Running` | its M, woken | `PState::unpark` |
/// | `Running` | `Syscall` | its M, entering a blocking call | `PState::enter_syscall` |
/// | `Syscall` | `Running` | its M, leaving it (fast path: the P never left) | `PState::exit_syscall` |
/// | `Syscall` | `Handed` | sysmon's handoff: a spare M now serves the P | `PState::hand_off` |
/// | `Handed` | `Reclaim` | its M, back from its call, wants the P | `PState::reclaim` |
/// | `Reclaim` | `Running` | the spare, giving the P back (then wakes the M) | `PState::give_back` |
/// | `Idle` | `Lent` | a host thread running a call inline, its M parked | `PState::lend` |
/// | `Lent` | `Idle` | the host thread, done (then its M may be woken) | `PState::take_back` |
///
/// A lent P goes through the blocking-call states as a P of an M does,
/// with `Lent` in place of `Running` (`PState::held`): its host thread
/// enters a blocking call (`Lent` to `Syscall`), leaves it (`Syscall` to
/// `Lent`), or a spare gives it back (`Reclaim` to `Lent`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PStatus {
    /// Its M runs Lua, or looks for work.
    Running = 0,
    /// Its M is parked: nothing to run.
    Idle = 1,
    /// Its M is in a blocking call and still holds it.
    Syscall = 2,
    /// A spare M serves it while its M is in a blocking call.
    Handed = 3,
    /// Its M is back from the call and waits for the spare to give it back.
    Reclaim = 4,
    /// Its M is parked and a host thread runs a call on it (the host thread
    /// is the P's M meanwhile; the parked M stays parked until it is back).
    Lent = 5,
}

impl PStatus {
    fn from_u8(v: u8) -> PStatus {
        match v {
            0 => PStatus::Running,
            1 => PStatus::Idle,
            2 => PStatus::Syscall,
            3 => PStatus::Handed,
            4 => PStatus::Reclaim,
            5 => PStatus::Lent,
            _ => unreachable!("no P status {v}"),
        }
    }
}

/// Whether a P may go from `from` to `to` (the table of [`PStatus`]).
pub fn transition_ok(from: PStatus, to: PStatus) -> bool {
    use PStatus::*;
    matches!(
        (from, to),
        (Running, Idle)
            | (Idle, Running)
            | (Running, Syscall)
            | (Syscall, Running)
            | (Syscall, Handed)
            | (Handed, Reclaim)
            | (Reclaim, Running)
            | (Idle, Lent)
            | (Lent, Idle)
            | (Lent, Syscall)
            | (Syscall, Lent)
            | (Reclaim, Lent)
    )
}

/// A P's status, changed only through the named transitions (a bad one
/// fails a debug assertion; the ones that race are compare-and-swaps
/// that say whether they happened).
pub struct PState {
    status: AtomicU8,
    /// Lent to a host thread (from `lend` to `take_back`).
    lent: AtomicBool,
}

impl PState {
    fn new() -> PState {
        PState {
            status: AtomicU8::new(PStatus::Running as u8),
            lent: AtomicBool::new(false),
        }
    }

    /// The status now.
    pub fn get(&self) -> PStatus {
        PStatus::from_u8(self.status.load(Ordering::Acquire))
    }

    /// The status of the P while its holder runs on it: `Lent` for a host
    /// thread, else `Running`.
    pub(crate) fn held(&self) -> PStatus {
        match self.lent.load(Ordering::Acquire) {
            true => PStatus::Lent,
            false => PStatus::Running,
        }
    }

    /// `from` to `to` if the P is in `from`; whether it was.
    fn cas(&self, from: PStatus, to: PStatus) -> bool {
        debug_assert!(transition_ok(from, to), "P {from:?} -> {to:?}");
        self.status
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// `from` to `to`, when only the caller can move the P out of `from`.
    fn set(&self, from: PStatus, to: PStatus) {
        let moved = self.cas(from, to);
        debug_assert!(moved, "P {:?} -> {to:?}: it was not {from:?}", self.get());
    }

    /// Its M parks with nothing to run.
    pub(crate) fn park(&self) {
        self.set(PStatus::Running, PStatus::Idle);
    }

    /// Its M is awake again; false while the P is lent to a host thread
    /// (the M parks on until it is back).
    pub(crate) fn unpark(&self) -> bool {
        self.cas(PStatus::Idle, PStatus::Running)
    }

    /// A host thread borrows the P of a parked M; false if it is not idle.
    pub(crate) fn lend(&self) -> bool {
        let lent = self.cas(PStatus::Idle, PStatus::Lent);
        if lent {
            self.lent.store(true, Ordering::Release);
        }
        lent
    }

    /// The host thread gives the P back: idle again.
    pub(crate) fn take_back(&self) {
        self.lent.store(false, Ordering::Release);
        self.set(PStatus::Lent, PStatus::Idle);
    }

    /// Its M (or the host thread it is lent to) enters a blocking call.
    pub(crate) fn enter_syscall(&self) {
        self.set(self.held(), PStatus::Syscall);
    }

    /// Its M leaves a blocking call; false if the P was handed off meanwhile.
    pub(crate) fn exit_syscall(&self) -> bool {
        self.cas(PStatus::Syscall, self.held())
    }

    /// sysmon hands the P to a spare; false if the call ended meanwhile.
    pub(crate) fn hand_off(&self) -> bool {
        self.cas(PStatus::Syscall, PStatus::Handed)
    }

    /// Its M, back from the call, asks the spare for the P.
    pub(crate) fn reclaim(&self) {
        self.set(PStatus::Handed, PStatus::Reclaim);
    }

    /// The spare gives the P back; false if nobody asked for it.
    pub(crate) fn give_back(&self) -> bool {
        self.cas(PStatus::Reclaim, self.held())
    }
}

impl P {
    pub(crate) fn new(id: usize) -> P {
        P {
            id,
            runq: Lock::new(Rank::RunQueue, VecDeque::new()),
            schedtick: AtomicU64::new(0),
            syscalltick: AtomicU64::new(0),
            home: Running::default(),
            borrower: Running::default(),
            serving: AtomicPtr::new(std::ptr::null_mut()),
            status: PState::new(),
            home_thread: OnceLock::new(),
        }
    }

    fn q(&self) -> Guard<'_, VecDeque<Arc<Actor>>> {
        self.runq.lock()
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
            // slot, which is leaked (`'static`) when the spare starts, or
            // of this P's own `borrower`.
            unsafe { &*p }
        }
    }

    /// Makes `slot` (a spare's or the borrower's; null: the home M's) the
    /// one serving the P.
    pub(crate) fn serve(&self, slot: *const Running) {
        self.serving.store(slot as *mut Running, Ordering::Release);
    }

    /// Makes the P's holder's slot the one serving it again (a spare gives
    /// it back): the borrower's while it is lent, else the home M's.
    pub(crate) fn serve_holder(&self) {
        match self.status.held() {
            PStatus::Lent => self.serve(&self.borrower),
            _ => self.serve(std::ptr::null()),
        }
    }

    /// Schedule ticks so far.
    pub fn ticks(&self) -> u64 {
        self.schedtick.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_allows_only_its_transitions() {
        use PStatus::*;
        let all = [Running, Idle, Syscall, Handed, Reclaim, Lent];
        let allowed = all
            .iter()
            .flat_map(|&f| all.iter().map(move |&t| (f, t)))
            .filter(|&(f, t)| transition_ok(f, t))
            .count();
        assert_eq!(allowed, 12);
        assert!(!transition_ok(Running, Lent), "only an idle P is lent");
        assert!(!transition_ok(Lent, Running), "a lent P goes back idle");
        assert!(!transition_ok(Idle, Syscall), "an idle M makes no call");
        assert!(
            !transition_ok(Handed, Running),
            "the M asks for it back first"
        );
    }

    #[test]
    fn a_handoff_and_its_return() {
        let s = PState::new();
        s.enter_syscall();
        assert!(s.hand_off());
        assert!(!s.exit_syscall(), "the fast path is gone");
        s.reclaim();
        assert!(s.give_back());
        assert_eq!(s.get(), PStatus::Running);
    }

    #[test]
    fn a_lent_p_keeps_its_parked_m_parked() {
        let s = PState::new();
        s.park();
        assert!(s.lend());
        assert!(!s.unpark(), "the M parks on while the P is lent");
        assert!(!s.lend(), "lent once");
        s.take_back();
        assert!(s.unpark());
        assert!(!s.lend(), "a running P is not lent");
    }

    #[test]
    fn a_lent_p_is_handed_off_and_comes_back_lent() {
        let s = PState::new();
        s.park();
        assert!(s.lend());
        s.enter_syscall();
        assert!(s.hand_off());
        s.reclaim();
        assert!(s.give_back());
        assert_eq!(s.get(), PStatus::Lent);
        s.enter_syscall();
        assert!(s.exit_syscall(), "the fast path");
        s.take_back();
        assert_eq!(s.get(), PStatus::Idle);
        assert_eq!(s.held(), PStatus::Running);
    }

    #[test]
    fn a_call_that_ends_first_wins_the_race_with_sysmon() {
        let s = PState::new();
        s.enter_syscall();
        assert!(s.exit_syscall());
        assert!(!s.hand_off(), "nothing to hand off");
        assert_eq!(s.get(), PStatus::Running);
    }
}
