//! Channels with Go's semantics.
//!
//! Invariants (as Go's `chan.go` states them):
//! - `sendq` is non-empty only if the buffer is full (or the channel is
//!   unbuffered) and no receiver waits.
//! - `recvq` is non-empty only if the buffer is empty and no sender waits.
//! - Once `closed`, both queues are empty and stay empty.
//!
//! A waiter (`Waiter`, Go's `sudog`) names one park of a goroutine (a
//! select's park has a waiter on each of its channels) or a host thread's
//! wait. Whoever completes it first claims the park (`GRef::claim`; a
//! host's token) and the others skip it: a waiter of a select won
//! elsewhere, or of a goroutine that was interrupted, is dead. Dead
//! waiters are dropped when they reach the front of a queue or when the
//! queue is compacted on growth; a dead plain sender's value goes back to
//! its actor then (`Waiter`'s `Drop`): it was not sent.
//!
//! Wake-ups are collected under the channel lock and delivered after it is
//! released, so `ready` never runs with a channel lock held.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Weak};
use std::time::{Duration, Instant};

use crate::actor::GRef;
use crate::lockrank::{Guard, Lock, Rank};
use crate::portable::{Kept, Portable, SlotOwner};
use crate::wake::{Msg, Wake};

static NEXT_CHAN_ID: AtomicU64 = AtomicU64::new(1);

pub use crate::park::SEND_ON_CLOSED;
/// Message of the error raised by closing a closed channel.
pub const CLOSE_OF_CLOSED: &str = "close of closed channel";

/// Who waits on a channel: a goroutine, or a host thread ([`HostPark`]).
pub enum Parker {
    /// A goroutine, woken by readying it.
    G(GRef),
    /// A host thread blocked in a channel call.
    Host(Arc<HostPark>),
}

impl Parker {
    /// Delivers the results of the wait, claimed by the caller
    /// (`Waiter::claim`).
    pub(crate) fn deliver(self, wake: Wake) {
        match self {
            Parker::G(g) => g.ready_claimed(wake),
            Parker::Host(h) => h.ready(wake),
        }
    }
}

impl From<GRef> for Parker {
    fn from(g: GRef) -> Parker {
        Parker::G(g)
    }
}

/// How long a host thread about to block (on a channel, for a task) spins
/// first.
const HOST_SPIN: Duration = Duration::from_micros(50);

/// Spins for up to [`HOST_SPIN`], unless `deadline` comes sooner, until
/// `flag` is set (a wake, a stop, a task's end): a host streaming with a
/// goroutine on another core, or calling one that returns at once, gets
/// its answer without sleeping and without being woken (an M spins so too
/// before it parks). True if the flag was set.
pub(crate) fn host_spin(flag: &AtomicBool, deadline: Option<Instant>) -> bool {
    if flag.load(Ordering::Acquire) {
        // Already there (a call that ran inline): not even a clock read.
        return true;
    }
    let start = Instant::now();
    if deadline.is_some_and(|d| d <= start + HOST_SPIN) {
        return flag.load(Ordering::Acquire);
    }
    loop {
        if flag.load(Ordering::Acquire) {
            return true;
        }
        if start.elapsed() >= HOST_SPIN {
            return false;
        }
        for _ in 0..64 {
            std::hint::spin_loop();
        }
    }
}

/// A host thread blocked on a channel operation.
pub struct HostPark {
    state: Lock<ParkState>,
    cv: Condvar,
    /// Set with the wake (or the stop), read by a host spinning before it
    /// blocks ([`HostPark::wait`]).
    woken: AtomicBool,
    /// The select token of the waiter it queued: a host that gives up (a
    /// timeout) claims it, so no value is handed to a waiter nobody reads.
    pub(crate) token: Arc<AtomicBool>,
}

/// What a host's park has received, and whether its thread sleeps on
/// the condition variable (a wake that finds it spinning makes no system
/// call).
#[derive(Default)]
struct ParkState {
    wake: Option<Wake>,
    stopped: bool,
    sleeping: bool,
}

impl Default for HostPark {
    fn default() -> HostPark {
        HostPark {
            state: Lock::new(Rank::HostPark, ParkState::default()),
            cv: Condvar::new(),
            woken: AtomicBool::new(false),
            token: Arc::default(),
        }
    }
}

/// Why a host's wait on a channel ended without a wake.
#[derive(Debug, PartialEq, Eq)]
pub enum ParkEnd {
    /// The deadline passed (the waiter was withdrawn).
    Timeout,
    /// The runtime stopped.
    Stopped,
}

impl HostPark {
    pub(crate) fn ready(&self, wake: Wake) {
        let mut s = self.state.lock();
        s.wake = Some(wake);
        self.woken.store(true, Ordering::Release);
        if s.sleeping {
            self.cv.notify_all();
        }
    }

    pub(crate) fn stop(&self) {
        let mut s = self.state.lock();
        s.stopped = true;
        self.woken.store(true, Ordering::Release);
        if s.sleeping {
            self.cv.notify_all();
        }
    }

    /// Waits for the wake of the waiter this park queued, until
    /// `deadline`. On a timeout the waiter is withdrawn, unless it has
    /// been completed meanwhile: then its wake is waited for (it is on
    /// its way) and returned.
    pub fn wait(&self, deadline: Option<Instant>) -> Result<Wake, ParkEnd> {
        host_spin(&self.woken, deadline);
        let mut s = self.state.lock();
        loop {
            if let Some(w) = s.wake.take() {
                return Ok(w);
            }
            if s.stopped {
                self.token.store(true, Ordering::Release);
                return Err(ParkEnd::Stopped);
            }
            let left = match deadline {
                None => None,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => Some(left),
                    None => {
                        if !self.token.swap(true, Ordering::AcqRel) {
                            return Err(ParkEnd::Timeout);
                        }
                        // Claimed by a sender or receiver: its wake comes.
                        None
                    }
                },
            };
            s.sleeping = true;
            s = match left {
                None => s.wait(&self.cv),
                Some(left) => s.wait_timeout(&self.cv, left),
            };
            s.sleeping = false;
        }
    }
}

/// A goroutine or host waiting on a channel (Go's `sudog`).
pub(crate) struct Waiter {
    pub(crate) g: Parker,
    /// 1-based select case index; 0 for a plain send or receive.
    pub(crate) case: usize,
    /// The value of a waiting sender.
    pub(crate) msg: Option<Msg>,
}

impl Waiter {
    pub(crate) fn plain(g: Parker, msg: Option<Msg>) -> Waiter {
        Waiter { g, case: 0, msg }
    }

    /// Whether it is a case of a select (whose G keeps its send values).
    fn is_select(&self) -> bool {
        self.case != 0
    }

    /// Takes the right to complete this waiter; false if its park was
    /// completed elsewhere (another case of its select, an interrupt) or
    /// its host gave up.
    fn claim(&self) -> bool {
        match &self.g {
            Parker::G(g) => g.claim(),
            // AcqRel: as a park's claim.
            Parker::Host(h) => !h.token.swap(true, Ordering::AcqRel),
        }
    }

    fn alive(&self) -> bool {
        match &self.g {
            Parker::G(g) => g.is_open(),
            Parker::Host(h) => !h.token.load(Ordering::Acquire),
        }
    }

    /// The wake for a receiver that got `msg`.
    pub(crate) fn received(self, msg: Msg, ok: bool) -> (Parker, Wake) {
        let wake = if self.is_select() {
            Wake::Select {
                case: self.case,
                recv: Some((msg, ok)),
            }
        } else {
            Wake::Recv(msg, ok)
        };
        (self.g, wake)
    }

    /// The wake for a sender whose value was taken; returns the value too.
    pub(crate) fn sent(mut self) -> (Msg, Parker, Wake) {
        let msg = self.msg.take().expect("a waiting sender holds a value");
        let wake = if self.is_select() {
            Wake::Select {
                case: self.case,
                recv: None,
            }
        } else {
            Wake::Unit
        };
        (msg, self.g, wake)
    }

    /// Lets go of a dead waiter: a plain sender's value goes back to its
    /// actor, which releases it (it was not sent). A select's send values
    /// are its G's to release (`sel_sends`).
    fn discard(&mut self) {
        if let (false, Some(Msg::Slot(r)), Parker::G(g)) =
            (self.is_select(), self.msg.take(), &self.g)
        {
            g.actor.release_later(r);
        }
    }
}

/// A FIFO of waiters.
#[derive(Default)]
pub(crate) struct WaitQ {
    q: VecDeque<Waiter>,
    /// Length at which dead select waiters are next swept out.
    sweep_at: usize,
}

impl WaitQ {
    pub(crate) fn push(&mut self, w: Waiter) {
        if self.q.len() >= self.sweep_at.max(16) {
            self.q.retain_mut(|w| {
                let alive = w.alive();
                if !alive {
                    w.discard();
                }
                alive
            });
            self.sweep_at = self.q.len() * 2;
        }
        self.q.push_back(w);
    }

    /// The first waiter that can still be completed, claimed.
    pub(crate) fn dequeue(&mut self) -> Option<Waiter> {
        while let Some(mut w) = self.q.pop_front() {
            if w.claim() {
                return Some(w);
            }
            w.discard();
        }
        None
    }

    fn has_live(&self) -> bool {
        self.q.iter().any(Waiter::alive)
    }

    fn drain_claimed(&mut self) -> Vec<Waiter> {
        let mut v = Vec::new();
        while let Some(w) = self.dequeue() {
            v.push(w);
        }
        v
    }
}

impl Drop for WaitQ {
    fn drop(&mut self) {
        for mut w in self.q.drain(..) {
            w.discard();
        }
    }
}

pub(crate) struct ChanState {
    pub(crate) buf: VecDeque<Msg>,
    pub(crate) closed: bool,
    pub(crate) recvq: WaitQ,
    pub(crate) sendq: WaitQ,
}

/// What a send did.
pub enum SendResult {
    /// Done without blocking.
    Sent,
    /// The sender was queued: park it.
    Park,
    /// The channel is closed: raise [`SEND_ON_CLOSED`]. The value is
    /// given back.
    Closed(Msg),
    /// It would block but the caller cannot park (`me` gave no G): the
    /// value is given back and nothing was queued.
    WouldBlock(Msg),
}

/// What a receive did.
pub enum RecvResult {
    /// A value (or `nil, false` from a closed channel).
    Got(Msg, bool),
    /// The receiver was queued: park it.
    Park,
    /// It would block but the caller cannot park; nothing was queued.
    WouldBlock,
}

/// A channel.
pub struct Chan {
    /// Unique id; select locks channels in id order.
    pub id: u64,
    cap: usize,
    /// Held by more than one actor: values sent on it are copied.
    shared: AtomicBool,
    state: Lock<ChanState>,
    /// Its capacity's bytes, charged to the actor that made it.
    _charge: crate::mem::Charge,
}

impl std::fmt::Debug for Chan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "chan#{} (cap {})", self.id, self.cap)
    }
}

impl Chan {
    /// A channel with room for `cap` values (0: unbuffered).
    pub fn new(cap: usize) -> Chan {
        Chan::charged(cap, crate::mem::Charge::NONE)
    }

    /// A channel whose bytes (`mem::CHAN_BYTES` and `mem::SLOT_BYTES` per
    /// unit of capacity, as Go allocates the buffer in `make`) are charged
    /// as `charge`.
    pub fn charged(cap: usize, charge: crate::mem::Charge) -> Chan {
        Chan {
            id: NEXT_CHAN_ID.fetch_add(1, Ordering::Relaxed),
            cap,
            shared: AtomicBool::new(false),
            state: Lock::new(
                Rank::Chan,
                ChanState {
                    buf: VecDeque::with_capacity(cap.min(64)),
                    closed: false,
                    recvq: WaitQ::default(),
                    sendq: WaitQ::default(),
                },
            ),
            _charge: charge,
        }
    }

    /// The bytes a channel of capacity `cap` is charged.
    pub fn bytes(cap: usize) -> usize {
        crate::mem::CHAN_BYTES.saturating_add(cap.saturating_mul(crate::mem::SLOT_BYTES))
    }

    pub(crate) fn lock(&self) -> Guard<'_, ChanState> {
        self.state.lock()
    }

    /// Whether more than one actor holds the channel.
    pub fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Acquire)
    }

    /// A channel that is shared from the start (the host's channels):
    /// values sent on it are copies.
    pub fn new_shared(cap: usize) -> Chan {
        let ch = Chan::new(cap);
        ch.shared.store(true, Ordering::Release);
        ch
    }

    /// Marks the channel shared: it is being handed to another actor by
    /// `origin`, the one actor that used it so far, on whose M this runs.
    /// Values in it become [`Kept`] values: the original for `origin`
    /// (whose values table is at `values`), a copy for the others. `copy`
    /// makes the copy of a value of `origin`'s (it must not run Lua code:
    /// the channel is locked); if any value cannot be copied, nothing
    /// changes and its error is returned. Values of a select parked on
    /// sending here move into the kept values: the select no longer
    /// releases them.
    pub fn share<E>(
        &self,
        origin: &Arc<crate::actor::Actor>,
        values: *const std::ffi::c_void,
        mut copy: impl FnMut(&Msg) -> Result<Portable, E>,
    ) -> Result<(), E> {
        let mut s = self.lock();
        // Shared from here on, so that a copy that meets this channel
        // again (it is in its own buffer) does not share it twice.
        if self.shared.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let s = &mut *s;
        // All copies first: a refusal leaves the channel as it was.
        let slot_of = |m: &Msg| matches!(m, Msg::Slot(_));
        let mut copies = Vec::new();
        for m in s
            .buf
            .iter()
            .chain(s.sendq.q.iter().filter_map(|w| w.msg.as_ref()))
        {
            if slot_of(m) {
                match copy(m) {
                    Ok(p) => copies.push(p),
                    Err(e) => {
                        self.shared.store(false, Ordering::Release);
                        return Err(e);
                    }
                }
            }
        }
        let mut copies = copies.into_iter();
        let owner: Weak<dyn SlotOwner> = Arc::downgrade(origin) as Weak<dyn SlotOwner>;
        let mut keep = |m: &mut Msg| {
            if let Msg::Slot(r) = *m {
                let p = copies.next().expect("one copy per slot");
                *m = Msg::Kept(Arc::new(Kept::new(owner.clone(), values, r, p)));
            }
        };
        s.buf.iter_mut().for_each(&mut keep);
        for w in s.sendq.q.iter_mut() {
            let Some(m) = w.msg.as_mut() else { continue };
            let was_slot = slot_of(m);
            keep(m);
            if let (true, true, Parker::G(g)) = (was_slot, w.is_select(), &w.g) {
                g.disown_select_send(w.case);
            }
        }
        Ok(())
    }

    /// Capacity.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Values in the buffer.
    pub fn len(&self) -> usize {
        self.lock().buf.len()
    }

    /// Whether the buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a goroutine waits to receive (a live waiter, select or not).
    pub fn has_receivers(&self) -> bool {
        self.lock().recvq.has_live()
    }

    /// Whether the channel has been closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Tries to complete a send on a locked channel without blocking.
    /// `Err(msg)` gives the value back when the send would block.
    pub(crate) fn try_send_locked(
        &self,
        s: &mut ChanState,
        msg: Msg,
        wake: &mut Option<(Parker, Wake)>,
    ) -> Result<(), Msg> {
        if let Some(w) = s.recvq.dequeue() {
            *wake = Some(w.received(msg, true));
            Ok(())
        } else if s.buf.len() < self.cap {
            s.buf.push_back(msg);
            Ok(())
        } else {
            Err(msg)
        }
    }

    /// Tries to complete a receive on a locked, open or drained channel.
    pub(crate) fn try_recv_locked(
        &self,
        s: &mut ChanState,
        wake: &mut Option<(Parker, Wake)>,
    ) -> Option<(Msg, bool)> {
        if let Some(m) = s.buf.pop_front() {
            // A full buffer with a waiting sender: its value takes the slot.
            if let Some(w) = s.sendq.dequeue() {
                let (sent, g, w) = w.sent();
                s.buf.push_back(sent);
                *wake = Some((g, w));
            }
            Some((m, true))
        } else if let Some(w) = s.sendq.dequeue() {
            let (sent, g, w) = w.sent();
            *wake = Some((g, w));
            Some((sent, true))
        } else if s.closed {
            Some((Msg::Nil, false))
        } else {
            None
        }
    }

    /// Sends `msg`; on `Park` the caller's G (from `me`) has been queued.
    /// `me` gives `None` when the caller cannot park (it runs inside a C
    /// call that Lua cannot yield across).
    pub fn send<W: Into<Parker>>(&self, msg: Msg, me: impl FnOnce() -> Option<W>) -> SendResult {
        let mut wake = None;
        let mut s = self.lock();
        if s.closed {
            return SendResult::Closed(msg);
        }
        let r = match self.try_send_locked(&mut s, msg, &mut wake) {
            Ok(()) => SendResult::Sent,
            Err(msg) => match me() {
                Some(g) => {
                    s.sendq.push(Waiter::plain(g.into(), Some(msg)));
                    SendResult::Park
                }
                None => SendResult::WouldBlock(msg),
            },
        };
        drop(s);
        wake_one(wake);
        r
    }

    /// Receives; on `Park` the caller's G (from `me`) has been queued.
    pub fn recv<W: Into<Parker>>(&self, me: impl FnOnce() -> Option<W>) -> RecvResult {
        let mut wake = None;
        let mut s = self.lock();
        let r = match self.try_recv_locked(&mut s, &mut wake) {
            Some((m, ok)) => RecvResult::Got(m, ok),
            None => match me() {
                Some(g) => {
                    s.recvq.push(Waiter::plain(g.into(), None));
                    RecvResult::Park
                }
                None => RecvResult::WouldBlock,
            },
        };
        drop(s);
        wake_one(wake);
        r
    }

    /// Empties the buffer (the channel's last Lua handle is being
    /// collected: nobody can receive these any more); returns the values so
    /// their slots can be released.
    pub fn drain_buffer(&self) -> Vec<Msg> {
        self.lock().buf.drain(..).collect()
    }

    /// Sends without blocking; false if it would block or the channel is
    /// closed (timers use this: a tick nobody has room for is dropped).
    /// Only for messages without a slot (a refused one is dropped).
    pub fn offer(&self, msg: Msg) -> bool {
        let mut wake = None;
        let mut s = self.lock();
        let ok = !s.closed && self.try_send_locked(&mut s, msg, &mut wake).is_ok();
        drop(s);
        wake_one(wake);
        ok
    }

    /// Closes the channel: waiting receivers get `nil, false`, waiting
    /// senders fail with [`SEND_ON_CLOSED`].
    pub fn close(&self) -> Result<(), &'static str> {
        let mut s = self.lock();
        if s.closed {
            return Err(CLOSE_OF_CLOSED);
        }
        s.closed = true;
        let receivers = s.recvq.drain_claimed();
        let senders = s.sendq.drain_claimed();
        drop(s);
        for w in receivers {
            let (g, wake) = w.received(Msg::Nil, false);
            g.deliver(wake);
        }
        for w in senders {
            // A select's values are released by its G (`sel_sends`).
            let unsent = if w.is_select() { None } else { w.msg };
            w.g.deliver(Wake::SendClosed(unsent));
        }
        Ok(())
    }
}

/// Delivers the wake an operation produced, after its lock is released.
pub(crate) fn wake_one(wake: Option<(Parker, Wake)>) {
    if let Some((g, w)) = wake {
        g.deliver(w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_park_that_times_out_withdraws_its_waiter() {
        let p = HostPark::default();
        let r = p.wait(Some(Instant::now()));
        assert_eq!(r.err(), Some(ParkEnd::Timeout));
        assert!(
            p.token.load(Ordering::Acquire),
            "token claimed: waiter dead"
        );
    }

    fn no_g() -> Option<GRef> {
        None
    }

    fn recv(ch: &Chan) -> Option<(Msg, bool)> {
        match ch.recv(no_g) {
            RecvResult::Got(m, ok) => Some((m, ok)),
            RecvResult::WouldBlock => None,
            RecvResult::Park => unreachable!("no G to park"),
        }
    }

    #[test]
    fn buffered_fifo_then_would_block() {
        let ch = Chan::new(2);
        assert!(matches!(ch.send(Msg::Integer(1), no_g), SendResult::Sent));
        assert!(matches!(ch.send(Msg::Nil, no_g), SendResult::Sent));
        assert!(matches!(
            ch.send(Msg::Integer(3), no_g),
            SendResult::WouldBlock(Msg::Integer(3))
        ));
        assert_eq!(ch.len(), 2);
        assert_eq!(recv(&ch), Some((Msg::Integer(1), true)));
        assert_eq!(recv(&ch), Some((Msg::Nil, true)), "nil is a value");
        assert_eq!(recv(&ch), None);
    }

    #[test]
    fn unbuffered_without_partner_would_block() {
        let ch = Chan::new(0);
        assert!(matches!(
            ch.send(Msg::Integer(1), no_g),
            SendResult::WouldBlock(_)
        ));
        assert!(!ch.offer(Msg::Number(1.0)), "offer never blocks and drops");
        assert_eq!(recv(&ch), None);
    }

    #[test]
    fn close_drains_then_reports_closed() {
        let ch = Chan::new(1);
        assert!(ch.offer(Msg::Boolean(true)));
        ch.close().unwrap();
        assert_eq!(ch.close(), Err(CLOSE_OF_CLOSED));
        assert!(matches!(
            ch.send(Msg::Integer(1), no_g),
            SendResult::Closed(Msg::Integer(1))
        ));
        assert_eq!(recv(&ch), Some((Msg::Boolean(true), true)));
        assert_eq!(recv(&ch), Some((Msg::Nil, false)));
        assert_eq!(recv(&ch), Some((Msg::Nil, false)), "stays closed");
    }

    #[test]
    fn drain_buffer_empties_it() {
        let ch = Chan::new(3);
        ch.offer(Msg::Integer(1));
        ch.offer(Msg::Slot(5));
        assert_eq!(ch.drain_buffer(), vec![Msg::Integer(1), Msg::Slot(5)]);
        assert!(ch.is_empty());
    }
}
#[cfg(test)]
mod size_probe {
    #[test]
    fn sizes() {
        eprintln!(
            "GRef {} Waiter {} Parker {} TimerAction {}",
            std::mem::size_of::<crate::actor::GRef>(),
            std::mem::size_of::<super::Waiter>(),
            std::mem::size_of::<super::Parker>(),
            std::mem::size_of::<crate::timer::TimerAction>()
        );
    }
}
