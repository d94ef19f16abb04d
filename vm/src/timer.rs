//! Timers: one heap of deadlines for the whole runtime.
//!
//! Mechanism only: [`Timers::run_due`] fires what is due and
//! [`Timers::next_deadline`] says when to look again. Who calls them is
//! policy: an M between two goroutines, an idle M sleeping until the next
//! deadline, and (with sysmon) the monitor thread. Any thread may call them.
//!
//! Stopped and reset timers leave their old heap node behind; a node is live
//! only while its id is in `entries` with the same deadline, so stale nodes
//! are skipped when they surface (Go's timer heap marks them the same way).
//! When stale nodes outnumber live ones the heap is rebuilt from the
//! entries, so a loop of resets or stops holds no more than twice the live
//! timers (amortized O(1) a change). Actions run after the lock is
//! released.
//!
//! A timer made by a script is charged to its actor (`crate::mem`) while
//! it is pending. The timers that wake an actor's goroutines or run its
//! `afterfunc`s go when the actor ends ([`Timers::purge`]): nothing can
//! run them any more, and a deadline far away would keep them forever.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::actor::{Actor, GRef};
use crate::chan::Chan;
use crate::lockrank::{Guard, Lock, Rank};
use crate::mem::Charge;
use crate::wake::{Msg, Wake};

/// What a timer does when it fires.
#[derive(Clone)]
pub enum TimerAction {
    /// Ready a sleeping G.
    Wake(GRef),
    /// Send the time on a channel without blocking (dropped if full).
    Send(Arc<Chan>),
    /// Post a task to an actor (`time.afterfunc`).
    Task(Arc<Actor>, u64),
    /// The deadline of a wait another layer completes (a socket
    /// operation's, `crate::netpoll`).
    Expire(Arc<dyn Expiring>),
}

/// A wait with a deadline, completed by whoever comes first: its event
/// (elsewhere) or its timer ([`TimerAction::Expire`]).
pub trait Expiring: Send + Sync {
    /// The deadline passed.
    fn expire(&self);
    /// Whether it still waits: expiring would wake a goroutine.
    fn waiting(&self) -> bool;
}

impl TimerAction {
    /// The actor whose goroutine this wakes or whose task this posts.
    fn actor(&self) -> Option<&Arc<Actor>> {
        match self {
            TimerAction::Wake(g) => Some(&g.actor),
            TimerAction::Task(a, _) => Some(a),
            TimerAction::Send(_) | TimerAction::Expire(_) => None,
        }
    }

    fn fire(self, now: u64) {
        match self {
            TimerAction::Wake(g) => g.ready_front(Wake::Unit),
            TimerAction::Send(ch) => {
                ch.offer(Msg::Number(now as f64 / 1e9));
            }
            TimerAction::Task(actor, id) => actor.post_task(id),
            TimerAction::Expire(w) => w.expire(),
        }
    }
}

/// Identifies a timer for `stop` and `reset`.
pub type TimerId = u64;

struct Entry {
    when: u64,
    /// Zero for one-shot timers.
    period: u64,
    action: TimerAction,
    /// Charged to the actor that made the timer, while it is pending.
    _charge: Charge,
}

impl Entry {
    fn new(when: u64, period: u64, action: TimerAction, charge: Charge) -> Entry {
        if let Some(a) = action.actor() {
            a.timers.fetch_add(1, Ordering::Relaxed);
        }
        Entry {
            when,
            period,
            action,
            _charge: charge,
        }
    }
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Some(a) = self.action.actor() {
            a.timers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct Heap {
    nodes: BinaryHeap<Reverse<(u64, TimerId)>>,
    /// Live timers by id (sequential ids: a multiplicative hash is enough).
    entries: FxHashMap<TimerId, Entry>,
    next_id: TimerId,
}

impl Heap {
    /// Rebuilds the heap from the live entries when stale nodes outnumber
    /// them.
    fn compact(&mut self) {
        if self.nodes.len() > 2 * self.entries.len() + 64 {
            self.nodes = self
                .entries
                .iter()
                .map(|(&id, e)| Reverse((e.when, id)))
                .collect();
        }
    }

    /// Drops stale nodes from the top and returns the live earliest deadline.
    fn peek(&mut self) -> Option<u64> {
        while let Some(&Reverse((when, id))) = self.nodes.peek() {
            match self.entries.get(&id) {
                Some(e) if e.when == when => return Some(when),
                _ => {
                    self.nodes.pop();
                }
            }
        }
        None
    }
}

/// The runtime's timers.
pub struct Timers {
    heap: Lock<Heap>,
    /// Earliest live deadline, `u64::MAX` when none: read without the lock
    /// on every schedule round. Written under the lock; a reader that sees a
    /// stale value only looks again slightly early or late by one round.
    next: AtomicU64,
    /// Threads inside [`Timers::run_due`] past the heap.
    firing: AtomicUsize,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            heap: Lock::new(Rank::Timers, Heap::default()),
            next: AtomicU64::new(u64::MAX),
            firing: AtomicUsize::new(0),
        }
    }
}

impl Timers {
    fn lock(&self) -> Guard<'_, Heap> {
        self.heap.lock()
    }

    fn publish(&self, h: &mut Heap) {
        self.next
            .store(h.peek().unwrap_or(u64::MAX), Ordering::Release);
    }

    /// Adds a timer at `when` (ns on the runtime clock), repeating every
    /// `period` ns if non-zero. Returns its id and whether it is now the
    /// earliest (a sleeper waiting for the old earliest must be woken).
    pub fn add(
        &self,
        when: u64,
        period: u64,
        action: TimerAction,
        charge: Charge,
    ) -> (TimerId, bool) {
        let entry = Entry::new(when, period, action, charge);
        let mut h = self.lock();
        let id = h.next_id;
        h.next_id += 1;
        h.entries.insert(id, entry);
        h.compact();
        h.nodes.push(Reverse((when, id)));
        let earliest = when < self.next.load(Ordering::Relaxed);
        self.publish(&mut h);
        (id, earliest)
    }

    /// Stops a timer; true if it was pending (Go's `Timer.Stop`).
    pub fn stop(&self, id: TimerId) -> bool {
        let mut h = self.lock();
        let removed = h.entries.remove(&id);
        h.compact();
        self.publish(&mut h);
        drop(h);
        removed.is_some()
    }

    /// Moves a pending timer to `when`; false if it was not pending.
    /// Returns (was pending, is now earliest).
    pub fn reset(&self, id: TimerId, when: u64) -> (bool, bool) {
        let mut h = self.lock();
        let Some(e) = h.entries.get_mut(&id) else {
            return (false, false);
        };
        e.when = when;
        h.compact();
        h.nodes.push(Reverse((when, id)));
        let earliest = when < self.next.load(Ordering::Relaxed);
        self.publish(&mut h);
        (true, earliest)
    }

    /// Drops every timer (the runtime is closing).
    pub(crate) fn clear(&self) {
        let mut h = self.lock();
        h.nodes.clear();
        // Dropped outside the lock: an action may hold the last reference
        // to an actor.
        let entries = std::mem::take(&mut h.entries);
        self.next.store(u64::MAX, Ordering::Release);
        drop(h);
        drop(entries);
    }

    /// Drops the timers that wake `actor`'s goroutines or post its tasks
    /// (it has ended). Costs a pass over the timers only if it has some.
    pub fn purge(&self, actor: &Actor) {
        if actor.timers.load(Ordering::Relaxed) == 0 {
            return;
        }
        let mut h = self.lock();
        let gone: Vec<TimerId> = h
            .entries
            .iter()
            .filter(|(_, e)| e.action.actor().is_some_and(|a| std::ptr::eq(&**a, actor)))
            .map(|(&id, _)| id)
            .collect();
        // Dropped outside the lock: an entry may hold the last reference
        // to an actor.
        let entries: Vec<Entry> = gone.iter().filter_map(|id| h.entries.remove(id)).collect();
        h.compact();
        self.publish(&mut h);
        drop(h);
        drop(entries);
    }

    /// The earliest pending deadline.
    pub fn next_deadline(&self) -> Option<u64> {
        match self.next.load(Ordering::Acquire) {
            u64::MAX => None,
            t => Some(t),
        }
    }

    /// Whether a timer is due at `now`, without taking the lock.
    #[inline]
    pub fn due(&self, now: u64) -> bool {
        self.next.load(Ordering::Acquire) <= now
    }

    /// Whether some pending timer can wake a goroutine when it fires: a
    /// sleep, an `afterfunc`, or a send on a channel that a goroutine is
    /// waiting to receive from. A ticker or timer whose channel nobody
    /// waits on cannot, and must not hide a deadlock (Go's check is
    /// silenced by any timer; lugo's is not).
    pub fn can_wake_anyone(&self) -> bool {
        self.lock().entries.values().any(|e| match &e.action {
            TimerAction::Wake(g) => g.is_open() && !g.actor.has_ended(),
            TimerAction::Task(a, _) => !a.has_ended(),
            TimerAction::Expire(w) => w.waiting(),
            TimerAction::Send(ch) => ch.has_receivers(),
        })
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fires every timer due at `now`; returns how many fired.
    pub fn run_due(&self, now: u64) -> usize {
        if !self.due(now) {
            return 0;
        }
        crate::trace::instant("timers fired");
        let mut fired = Vec::new();
        // Fired one-shot entries, dropped (their charges given back) once
        // the lock is released.
        let mut gone = Vec::new();
        {
            let mut h = self.lock();
            // Counted before the timers leave the heap: checkdead must not
            // see "no timer" while their wake-ups are still on the way.
            self.firing.fetch_add(1, Ordering::SeqCst);
            while let Some(when) = h.peek() {
                if when > now {
                    break;
                }
                let Reverse((_, id)) = h.nodes.pop().expect("peeked node");
                let e = h.entries.get_mut(&id).expect("live node has an entry");
                if e.period == 0 {
                    let e = h.entries.remove(&id).expect("live node has an entry");
                    fired.push(e.action.clone());
                    gone.push(e);
                } else {
                    // A ticker: next tick one period on, skipping missed
                    // ticks rather than bunching them (Go drops them too).
                    let mut next = e.when.saturating_add(e.period);
                    if next <= now {
                        next = now.saturating_add(e.period);
                    }
                    e.when = next;
                    fired.push(e.action.clone());
                    h.nodes.push(Reverse((next, id)));
                }
            }
            self.publish(&mut h);
        }
        drop(gone);
        let n = fired.len();
        for a in fired {
            a.fire(now);
        }
        self.firing.fetch_sub(1, Ordering::SeqCst);
        n
    }

    /// Whether some thread is between taking due timers off the heap and
    /// delivering their wake-ups.
    pub fn firing(&self) -> bool {
        self.firing.load(Ordering::SeqCst) > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan() -> Arc<Chan> {
        Arc::new(Chan::new(1))
    }

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let t = Timers::default();
        let (a, b) = (chan(), chan());
        t.add(200, 0, TimerAction::Send(b.clone()), Charge::NONE);
        let (_, earliest) = t.add(100, 0, TimerAction::Send(a.clone()), Charge::NONE);
        assert!(earliest);
        assert_eq!(t.next_deadline(), Some(100));
        assert_eq!(t.run_due(99), 0);
        assert_eq!(t.run_due(150), 1);
        assert_eq!((a.len(), b.len()), (1, 0));
        assert_eq!(t.next_deadline(), Some(200));
        assert_eq!(t.run_due(1000), 1);
        assert_eq!(b.len(), 1);
        assert!(t.is_empty());
        assert_eq!(t.next_deadline(), None);
    }

    #[test]
    fn stop_and_reset() {
        let t = Timers::default();
        let a = chan();
        let (id, _) = t.add(100, 0, TimerAction::Send(a.clone()), Charge::NONE);
        assert_eq!(t.reset(id, 300), (true, false));
        assert_eq!(t.run_due(200), 0, "the stale node at 100 must not fire");
        assert!(t.stop(id));
        assert!(!t.stop(id), "a second stop reports it was not pending");
        assert_eq!(t.run_due(1000), 0);
        assert_eq!(t.reset(id, 5), (false, false));
        assert_eq!(a.len(), 0);
    }

    #[test]
    fn resets_and_stops_in_a_loop_keep_the_heap_small() {
        let t = Timers::default();
        let a = chan();
        let (id, _) = t.add(1000, 0, TimerAction::Send(a.clone()), Charge::NONE);
        for i in 0..100_000 {
            t.reset(id, 2000 + i);
            let (other, _) = t.add(5000, 0, TimerAction::Send(a.clone()), Charge::NONE);
            t.stop(other);
        }
        let nodes = t.lock().nodes.len();
        // Twice the live timers (one) plus the slack, and the new node.
        assert!(nodes <= 2 + 64 + 1, "{nodes} heap nodes for one timer");
        assert_eq!(t.next_deadline(), Some(2000 + 99_999));
    }

    #[test]
    fn a_charge_is_given_back_when_a_timer_fires_or_stops() {
        let acct = crate::mem::Account::root(1 << 20);
        let t = Timers::default();
        let a = chan();
        let (id, _) = t.add(
            10,
            0,
            TimerAction::Send(a.clone()),
            acct.charge(100).unwrap(),
        );
        t.add(
            20,
            0,
            TimerAction::Send(a.clone()),
            acct.charge(100).unwrap(),
        );
        assert_eq!(acct.used(), 200);
        t.stop(id);
        assert_eq!(acct.used(), 100);
        t.run_due(30);
        assert_eq!(acct.used(), 0);
    }

    #[test]
    fn ticker_repeats_and_skips_missed_ticks() {
        let t = Timers::default();
        let a = chan();
        let (id, _) = t.add(10, 10, TimerAction::Send(a.clone()), Charge::NONE);
        assert_eq!(t.run_due(10), 1);
        assert_eq!(t.next_deadline(), Some(20));
        // Far behind: one tick, and the next is a period after now.
        assert_eq!(t.run_due(95), 1);
        assert_eq!(t.next_deadline(), Some(105));
        assert_eq!(a.len(), 1, "the slow receiver's channel holds one tick");
        assert!(t.stop(id));
    }
}
