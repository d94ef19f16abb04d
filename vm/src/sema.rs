//! Semaphores behind `sync`: a wait group, a mutex, a read-write mutex
//! and a weighted semaphore, whose waiters park their goroutine, never the
//! thread (Go's `sema.go` in miniature).
//!
//! The mutex hands ownership directly to the first waiter on unlock, so a
//! goroutine that loops lock/unlock cannot starve the others (Go's
//! starvation mode, always on: simple and fair).
//!
//! What is handed over (a lock, units) goes only to a waiter whose park
//! this hand-over claims (`WaitList`): one that was interrupted is dead,
//! skipped and dropped, and holds nothing.

use crate::lockrank::{Guard, Lock, Rank};
use std::collections::VecDeque;

use crate::actor::GRef;
use crate::wake::Wake;

/// The G from `me` queued by `push` (park it), or `CannotPark` when
/// there is none: the slow path of every wait here.
fn queue(me: impl FnOnce() -> Option<GRef>, push: impl FnOnce(GRef)) -> Acquire {
    match me() {
        Some(g) => {
            push(g);
            Acquire::Park
        }
        None => Acquire::CannotPark,
    }
}

/// Parked Gs in order, each with what it asks (`T`). A waiter whose park
/// was claimed elsewhere (an interrupt) is dead: dropped when it reaches
/// the front, or when the list is swept as it grows.
struct WaitList<T> {
    q: VecDeque<(GRef, T)>,
    /// Length at which dead waiters are next swept out.
    sweep_at: usize,
}

impl<T> Default for WaitList<T> {
    fn default() -> WaitList<T> {
        WaitList {
            q: VecDeque::new(),
            sweep_at: 0,
        }
    }
}

impl<T: Copy> WaitList<T> {
    fn push(&mut self, g: GRef, ask: T) {
        if self.q.len() >= self.sweep_at.max(16) {
            self.q.retain(|(g, _)| g.is_open());
            self.sweep_at = self.q.len() * 2;
        }
        self.q.push_back((g, ask));
    }

    /// Whether a live waiter is queued (dead ones at the front dropped).
    fn has_live(&mut self) -> bool {
        while let Some((g, _)) = self.q.front() {
            if g.is_open() {
                return true;
            }
            self.q.pop_front();
        }
        false
    }

    /// The first waiter that can still be completed, claimed, if what it
    /// asks `fits`; dead ones on the way are dropped.
    fn take_first(&mut self, fits: impl Fn(T) -> bool) -> Option<(GRef, T)> {
        while self.has_live() {
            let &(_, ask) = self.q.front()?;
            if !fits(ask) {
                return None;
            }
            let (g, ask) = self.q.pop_front()?;
            // Open a moment ago; an interrupt may have claimed it since.
            if g.claim() {
                return Some((g, ask));
            }
        }
        None
    }

    /// Every waiter that can still be completed, claimed.
    fn take_all(&mut self) -> Vec<GRef> {
        self.q
            .drain(..)
            .filter_map(|(g, _)| g.claim().then_some(g))
            .collect()
    }
}

/// Error of `waitgroup:add` taking the counter below zero.
pub const NEGATIVE_WAITGROUP: &str = "sync: negative WaitGroup counter";
/// Error of unlocking an unlocked mutex.
pub const UNLOCK_OF_UNLOCKED: &str = "sync: unlock of unlocked mutex";

/// What a possibly blocking semaphore operation did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquire {
    /// Done without blocking.
    Done,
    /// The caller's G was queued: park it.
    Park,
    /// It would block but the caller cannot park; nothing was queued.
    CannotPark,
}

#[derive(Default)]
struct WgState {
    count: i64,
    waiters: WaitList<()>,
}

/// `sync.waitgroup()`.
pub struct WaitGroup {
    state: Lock<WgState>,
}

impl Default for WaitGroup {
    fn default() -> WaitGroup {
        WaitGroup {
            state: Lock::new(Rank::Sema, WgState::default()),
        }
    }
}

impl WaitGroup {
    /// Adds `delta`; at zero every waiter is released.
    pub fn add(&self, delta: i64) -> Result<(), &'static str> {
        let mut s = self.state.lock();
        let count = s.count.checked_add(delta).ok_or(NEGATIVE_WAITGROUP)?;
        if count < 0 {
            return Err(NEGATIVE_WAITGROUP);
        }
        s.count = count;
        let released = if count == 0 {
            s.waiters.take_all()
        } else {
            Vec::new()
        };
        drop(s);
        for g in released {
            g.ready_claimed(Wake::Unit);
        }
        Ok(())
    }

    /// The counter.
    pub fn count(&self) -> i64 {
        self.state.lock().count
    }

    /// Returns at once if the counter is zero; otherwise queues the G from
    /// `me` (`None`: the caller cannot park).
    pub fn wait(&self, me: impl FnOnce() -> Option<GRef>) -> Acquire {
        let mut s = self.state.lock();
        if s.count == 0 {
            return Acquire::Done;
        }
        queue(me, |g| s.waiters.push(g, ()))
    }
}

#[derive(Default)]
struct MutexState {
    locked: bool,
    waiters: WaitList<()>,
}

/// `sync.mutex()`.
pub struct SemMutex {
    state: Lock<MutexState>,
}

impl Default for SemMutex {
    fn default() -> SemMutex {
        SemMutex {
            state: Lock::new(Rank::Sema, MutexState::default()),
        }
    }
}

impl SemMutex {
    fn s(&self) -> Guard<'_, MutexState> {
        self.state.lock()
    }

    /// Takes the lock if free; otherwise queues the G from `me` (`None`:
    /// the caller cannot park). A parked G owns the lock when woken.
    pub fn lock(&self, me: impl FnOnce() -> Option<GRef>) -> Acquire {
        let mut s = self.s();
        if !s.locked {
            s.locked = true;
            return Acquire::Done;
        }
        queue(me, |g| s.waiters.push(g, ()))
    }

    /// Whether it is held.
    pub fn is_locked(&self) -> bool {
        self.s().locked
    }

    /// Takes the lock if free.
    pub fn try_lock(&self) -> bool {
        let mut s = self.s();
        !std::mem::replace(&mut s.locked, true)
    }

    /// Releases the lock, handing it to the first waiter if any.
    pub fn unlock(&self) -> Result<(), &'static str> {
        let mut s = self.s();
        if !s.locked {
            return Err(UNLOCK_OF_UNLOCKED);
        }
        let next = s.waiters.take_first(|()| true);
        if next.is_none() {
            s.locked = false;
        }
        drop(s);
        if let Some((g, ())) = next {
            g.ready_claimed(Wake::Unit);
        }
        Ok(())
    }
}

/// Error of `runlock` without a reader.
pub const RUNLOCK_OF_UNLOCKED: &str = "sync: runlock of unlocked rwmutex";
/// Error of `unlock` of a read-write mutex not locked for writing.
pub const UNLOCK_OF_UNLOCKED_RW: &str = "sync: unlock of unlocked rwmutex";
/// Error of releasing more than is held.
pub const RELEASE_OF_UNHELD: &str = "sync: semaphore released more than held";

#[derive(Default)]
struct RwState {
    /// Readers holding it.
    readers: u64,
    /// A writer holds it.
    writer: bool,
    waiting_writers: WaitList<()>,
    waiting_readers: WaitList<()>,
}

/// `sync.rwmutex()`: many readers or one writer (Go's `RWMutex`). A
/// writer waiting keeps new readers out, so writers are not starved; an
/// unlock lets every waiting reader in before the next writer, so readers
/// are not either. A parked G holds what it asked for when woken.
pub struct RwMutex {
    state: Lock<RwState>,
}

impl Default for RwMutex {
    fn default() -> RwMutex {
        RwMutex {
            state: Lock::new(Rank::Sema, RwState::default()),
        }
    }
}

impl RwMutex {
    /// Takes a read lock, or queues the G from `me`.
    pub fn rlock(&self, me: impl FnOnce() -> Option<GRef>) -> Acquire {
        let mut s = self.state.lock();
        if !s.writer && !s.waiting_writers.has_live() {
            s.readers += 1;
            return Acquire::Done;
        }
        queue(me, |g| s.waiting_readers.push(g, ()))
    }

    /// Takes a read lock if that needs no wait.
    pub fn try_rlock(&self) -> bool {
        let mut s = self.state.lock();
        let free = !s.writer && !s.waiting_writers.has_live();
        if free {
            s.readers += 1;
        }
        free
    }

    /// Lets go of a read lock; the last reader hands the lock to the
    /// first waiting writer.
    pub fn runlock(&self) -> Result<(), &'static str> {
        let mut s = self.state.lock();
        if s.readers == 0 {
            return Err(RUNLOCK_OF_UNLOCKED);
        }
        s.readers -= 1;
        let next = match s.readers {
            0 => s.waiting_writers.take_first(|()| true),
            _ => None,
        };
        if next.is_some() {
            s.writer = true;
        }
        drop(s);
        if let Some((g, ())) = next {
            g.ready_claimed(Wake::Unit);
        }
        Ok(())
    }

    /// Takes the write lock, or queues the G from `me`.
    pub fn lock(&self, me: impl FnOnce() -> Option<GRef>) -> Acquire {
        let mut s = self.state.lock();
        if !s.writer && s.readers == 0 {
            s.writer = true;
            return Acquire::Done;
        }
        queue(me, |g| s.waiting_writers.push(g, ()))
    }

    /// Takes the write lock if free.
    pub fn try_lock(&self) -> bool {
        let mut s = self.state.lock();
        let free = !s.writer && s.readers == 0;
        if free {
            s.writer = true;
        }
        free
    }

    /// Lets go of the write lock: every waiting reader gets in, else the
    /// next writer does.
    pub fn unlock(&self) -> Result<(), &'static str> {
        let mut s = self.state.lock();
        if !s.writer {
            return Err(UNLOCK_OF_UNLOCKED_RW);
        }
        let readers = s.waiting_readers.take_all();
        let writer = match readers.is_empty() {
            true => s.waiting_writers.take_first(|()| true).map(|(g, ())| g),
            false => None,
        };
        s.writer = writer.is_some();
        s.readers += readers.len() as u64;
        drop(s);
        for g in readers.into_iter().chain(writer) {
            g.ready_claimed(Wake::Unit);
        }
        Ok(())
    }
}

#[derive(Default)]
struct SemState {
    held: u64,
    /// Waiting Gs and how much each asks, served in order.
    waiters: WaitList<u64>,
}

/// `sync.semaphore(n)`: a weighted semaphore of `n` units (Go's
/// `x/sync/semaphore`). Waiters are served in order: one asking for many
/// units is not passed by later ones asking for fewer.
pub struct Semaphore {
    size: u64,
    state: Lock<SemState>,
}

impl Semaphore {
    /// A semaphore of `size` units.
    pub fn new(size: u64) -> Semaphore {
        Semaphore {
            size,
            state: Lock::new(Rank::Sema, SemState::default()),
        }
    }

    /// Its size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Units held now.
    pub fn held(&self) -> u64 {
        self.state.lock().held
    }

    /// Takes `k` units (at most the size: the caller checks), or queues
    /// the G from `me`; a woken G holds them.
    pub fn acquire(&self, k: u64, me: impl FnOnce() -> Option<GRef>) -> Acquire {
        let mut s = self.state.lock();
        if !s.waiters.has_live() && s.held + k <= self.size {
            s.held += k;
            return Acquire::Done;
        }
        queue(me, |g| s.waiters.push(g, k))
    }

    /// Takes `k` units if that needs no wait.
    pub fn try_acquire(&self, k: u64) -> bool {
        let mut s = self.state.lock();
        let ok = !s.waiters.has_live() && s.held + k <= self.size;
        if ok {
            s.held += k;
        }
        ok
    }

    /// Gives back `k` units, then serves the waiters in order while the
    /// first fits.
    pub fn release(&self, k: u64) -> Result<(), &'static str> {
        let mut s = self.state.lock();
        if k > s.held {
            return Err(RELEASE_OF_UNHELD);
        }
        s.held -= k;
        let mut woken = Vec::new();
        loop {
            let (size, held) = (self.size, s.held);
            let Some((g, want)) = s.waiters.take_first(|want| held + want <= size) else {
                break;
            };
            s.held += want;
            woken.push(g);
        }
        drop(s);
        for g in woken {
            g.ready_claimed(Wake::Unit);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waitgroup_counter_cannot_go_negative() {
        let wg = WaitGroup::default();
        assert_eq!(wg.add(-1), Err(NEGATIVE_WAITGROUP));
        assert_eq!(wg.count(), 0, "a refused add changes nothing");
        wg.add(2).unwrap();
        wg.add(-2).unwrap();
        assert_eq!(wg.wait(|| unreachable!("no wait at zero")), Acquire::Done);
        wg.add(1).unwrap();
        assert_eq!(wg.wait(|| None), Acquire::CannotPark, "nothing queued");
        wg.add(-1).unwrap();
        assert_eq!(wg.add(i64::MIN), Err(NEGATIVE_WAITGROUP));
    }

    #[test]
    fn mutex_states() {
        let m = SemMutex::default();
        assert_eq!(m.unlock(), Err(UNLOCK_OF_UNLOCKED));
        assert!(m.try_lock());
        assert!(!m.try_lock());
        m.unlock().unwrap();
        assert_eq!(
            m.lock(|| unreachable!("free lock does not park")),
            Acquire::Done
        );
        assert!(!m.try_lock());
        assert_eq!(m.lock(|| None), Acquire::CannotPark, "nothing queued");
        m.unlock().unwrap();
    }

    #[test]
    fn rwmutex_states() {
        let m = RwMutex::default();
        assert_eq!(m.runlock(), Err(RUNLOCK_OF_UNLOCKED));
        assert_eq!(m.unlock(), Err(UNLOCK_OF_UNLOCKED_RW));
        assert!(m.try_rlock() && m.try_rlock(), "readers share it");
        assert!(!m.try_lock(), "no writer while readers hold it");
        assert_eq!(m.lock(|| None), Acquire::CannotPark);
        m.runlock().unwrap();
        m.runlock().unwrap();
        assert!(m.try_lock());
        assert!(!m.try_rlock(), "no reader while a writer holds it");
        m.unlock().unwrap();
        assert_eq!(m.rlock(|| unreachable!("free")), Acquire::Done);
        m.runlock().unwrap();
    }

    #[test]
    fn semaphore_units() {
        let s = Semaphore::new(3);
        assert_eq!(s.release(1), Err(RELEASE_OF_UNHELD));
        assert!(s.try_acquire(2));
        assert!(!s.try_acquire(2), "one unit left");
        assert!(s.try_acquire(1));
        assert_eq!(s.acquire(1, || None), Acquire::CannotPark);
        s.release(3).unwrap();
        assert_eq!(s.acquire(3, || unreachable!("free")), Acquire::Done);
        assert_eq!(s.release(4), Err(RELEASE_OF_UNHELD));
        s.release(3).unwrap();
    }
}
