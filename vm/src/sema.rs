//! Semaphores behind `sync`: a wait group and a mutex whose waiters park
//! their goroutine, never the thread (Go's `sema.go` in miniature).
//!
//! The mutex hands ownership directly to the first waiter on unlock, so a
//! goroutine that loops lock/unlock cannot starve the others (Go's
//! starvation mode, always on: simple and fair).

use crate::lockrank::{Guard, Lock, Rank};
use std::collections::VecDeque;

use crate::actor::GRef;
use crate::wake::Wake;

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
    waiters: Vec<GRef>,
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
            std::mem::take(&mut s.waiters)
        } else {
            Vec::new()
        };
        drop(s);
        for g in released {
            g.ready(Wake::Unit);
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
        match me() {
            Some(g) => {
                s.waiters.push(g);
                Acquire::Park
            }
            None => Acquire::CannotPark,
        }
    }
}

#[derive(Default)]
struct MutexState {
    locked: bool,
    waiters: VecDeque<GRef>,
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
        match me() {
            Some(g) => {
                s.waiters.push_back(g);
                Acquire::Park
            }
            None => Acquire::CannotPark,
        }
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
        let next = s.waiters.pop_front();
        if next.is_none() {
            s.locked = false;
        }
        drop(s);
        if let Some(g) = next {
            g.ready(Wake::Unit);
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
}
