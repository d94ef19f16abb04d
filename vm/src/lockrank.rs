//! Lock ranks (Go's `lockrank.go`): every mutex of the runtime has a
//! [`Rank`], and a thread takes locks only in increasing rank, so no two
//! threads can each hold a lock the other waits for. Debug builds check
//! it: a thread keeps the ranks it holds, and taking a lock whose rank is
//! not above all of them panics with both names. Release builds check
//! nothing and pay nothing.
//!
//! The order, outermost first (the rank's own doc says who nests what):
//!
//! | rank | lock | taken inside |
//! |------|------|--------------|
//! | `Started` | the Ms started | nothing |
//! | `Spares`, `SpareAssigned` | spare Ms, a spare's next P | nothing |
//! | `Outcome` | how the program ended | nothing |
//! | `Actors` | actors with an open state | nothing |
//! | `Idle` | idle Ms, timer and poller duty | an M going idle looks at timers, queues, sockets |
//! | `Global`, `RunQueue` | the global and each P's run queue | `Idle` |
//! | `Timers` | the timer heap | `Idle` (next deadline, checkdead) |
//! | `Netpoll` | the poller's sockets | `Idle` |
//! | `HostParked` | host threads blocked on channels | nothing |
//! | `Sema` | a wait group's or a mutex's state | nothing |
//! | `Chan` | a channel's state; several at once in id order (`select`) | `Timers` (checkdead asks whether a ticker's channel has receivers) |
//! | `HostPark` | one host thread's wait | `HostParked` (the runtime stops) |
//! | `ActorQueue` | an actor's run queue and G table | nothing (Gs are readied after other locks are let go) |
//! | `HostTasks`, `HostActorWaits`, `HostTask`, `HostInterrupts` | the host's tasks, its waits for actors, one task's end, interrupts | `ActorQueue` (a G ends) |
//! | `ActorEnded` | how an actor ended, what its body returned | `Timers` (checkdead) |
//! | `Unobserved` | errors nobody waited for | `ActorEnded` |
//! | `ActorWaiters`, `ActorTaskFn`, `ActorMemToken` | an actor's end waiters, task function, allocator token | nothing |
//! | `LeakTouched` | what an actor handed out while a leak check probed it | any (a copy made under a channel's lock) |

use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// The rank of a lock: a thread holding locks takes only higher ranks
/// (and `Chan` again, for `select`'s channels in id order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    /// The Ms started so far.
    Started,
    /// The spare Ms waiting for a P.
    Spares,
    /// A spare M's next P.
    SpareAssigned,
    /// How the program ended.
    Outcome,
    /// The actors whose state is open.
    Actors,
    /// Idle Ms and who watches timers and the poller.
    Idle,
    /// The global run queue.
    Global,
    /// A P's run queue.
    RunQueue,
    /// The timer heap.
    Timers,
    /// The poller's sockets.
    Netpoll,
    /// Host threads blocked on channels.
    HostParked,
    /// A wait group's or a mutex's state.
    Sema,
    /// A channel's state.
    Chan,
    /// One host thread's wait on a channel.
    HostPark,
    /// An actor's run queue and G table.
    ActorQueue,
    /// The goroutines the host waits for.
    HostTasks,
    /// The actors the host waits for.
    HostActorWaits,
    /// One task's end.
    HostTask,
    /// Goroutines asked to stop.
    HostInterrupts,
    /// How an actor ended.
    ActorEnded,
    /// Errors of actors nobody waited for.
    Unobserved,
    /// Goroutines and host threads waiting for an actor to end.
    ActorWaiters,
    /// An actor's task function.
    ActorTaskFn,
    /// An actor's allocator token.
    ActorMemToken,
    /// The shared objects an actor handed out while a leak check probed
    /// it (taken inside a channel's lock: a copy of a value being sent).
    LeakTouched,
}

impl Rank {
    /// Whether a thread may hold several locks of this rank (taken in an
    /// order of their own).
    fn several(self) -> bool {
        self == Rank::Chan
    }
}

/// Whether a thread that holds `held` (in the order taken, so the last
/// is the highest) may take a lock of rank `next`.
pub fn may_take(held: &[Rank], next: Rank) -> bool {
    match held.last() {
        None => true,
        Some(&top) => next > top || (next == top && next.several()),
    }
}

#[cfg(debug_assertions)]
thread_local! {
    /// The ranks of the locks this thread holds.
    static HELD: std::cell::RefCell<Vec<Rank>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The rank of one held lock, given back when it drops (nothing in a
/// release build).
struct Held {
    #[cfg(debug_assertions)]
    rank: Rank,
}

impl Held {
    #[cfg_attr(not(debug_assertions), allow(unused_variables))]
    fn take(rank: Rank) -> Held {
        #[cfg(debug_assertions)]
        HELD.with_borrow_mut(|held| {
            assert!(
                may_take(held, rank),
                "lugo: lock order: {rank:?} taken while holding {held:?}"
            );
            held.push(rank);
        });
        Held {
            #[cfg(debug_assertions)]
            rank,
        }
    }
}

#[cfg(debug_assertions)]
impl Drop for Held {
    fn drop(&mut self) {
        HELD.with_borrow_mut(|held| {
            if let Some(i) = held.iter().rposition(|&r| r == self.rank) {
                held.remove(i);
            }
        });
    }
}

/// A mutex with a rank.
pub struct Lock<T> {
    rank: Rank,
    m: Mutex<T>,
}

/// A held [`Lock`].
pub struct Guard<'a, T> {
    g: MutexGuard<'a, T>,
    _held: Held,
}

impl<T> Lock<T> {
    /// A lock of `rank` holding `v`.
    pub const fn new(rank: Rank, v: T) -> Lock<T> {
        Lock {
            rank,
            m: Mutex::new(v),
        }
    }

    /// Takes the lock. A poisoned lock (a panic while it was held) means
    /// the runtime's invariants are gone: this panics too.
    pub fn lock(&self) -> Guard<'_, T> {
        let held = Held::take(self.rank);
        let g = self
            .m
            .lock()
            .unwrap_or_else(|_| panic!("lugo: {:?} lock poisoned", self.rank));
        Guard { g, _held: held }
    }
}

impl<'a, T> Guard<'a, T> {
    /// Waits on `cv`, letting the lock go meanwhile (its rank stays
    /// counted: the thread takes nothing while it waits).
    pub fn wait(self, cv: &Condvar) -> Guard<'a, T> {
        let Guard { g, _held } = self;
        let g = cv.wait(g).unwrap_or_else(|e| e.into_inner());
        Guard { g, _held }
    }

    /// As [`Guard::wait`], for at most `d`.
    pub fn wait_timeout(self, cv: &Condvar, d: Duration) -> Guard<'a, T> {
        let Guard { g, _held } = self;
        let g = cv.wait_timeout(g, d).unwrap_or_else(|e| e.into_inner()).0;
        Guard { g, _held }
    }
}

impl<T> std::ops::Deref for Guard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.g
    }
}

impl<T> std::ops::DerefMut for Guard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        &mut self.g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_go_up_only() {
        assert!(may_take(&[], Rank::Idle));
        assert!(may_take(&[Rank::Idle], Rank::Timers));
        assert!(!may_take(&[Rank::Timers], Rank::Idle));
        assert!(!may_take(&[Rank::ActorQueue], Rank::ActorQueue));
        assert!(may_take(&[Rank::Timers, Rank::Chan], Rank::Chan), "select");
        assert!(!may_take(&[Rank::Idle, Rank::Chan], Rank::Timers));
    }

    #[cfg(debug_assertions)]
    #[test]
    #[should_panic(expected = "lock order: Idle taken while holding [Timers]")]
    fn a_lock_taken_out_of_order_panics_in_debug_builds() {
        let (outer, inner) = (Lock::new(Rank::Idle, ()), Lock::new(Rank::Timers, ()));
        let _t = inner.lock();
        let _i = outer.lock();
    }

    #[cfg(debug_assertions)]
    #[test]
    fn a_released_rank_no_longer_counts() {
        let (outer, inner) = (Lock::new(Rank::Idle, ()), Lock::new(Rank::Timers, ()));
        drop(inner.lock());
        let _i = outer.lock();
        let _t = inner.lock();
    }
}
