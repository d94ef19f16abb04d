//! The network poller: one `polling::Poller` for the whole runtime (the
//! one wrapper of that OS facility, STYLE.md item 8).
//!
//! Each socket is a *source* with a key in the poller and two lists of
//! waiting goroutines (readers, writers). A goroutine whose operation would
//! block adds an [`IoWaiter`] and parks; the poller readies it when its
//! direction becomes ready, and the goroutine retries the operation.
//!
//! Invariants:
//! 1. Sources are registered once, edge-triggered, for both directions (as
//!    Go's netpoll): no system call to re-arm. An edge with no waiter sets
//!    the direction's `ready` flag; a goroutine about to park consumes it
//!    and retries instead, so no edge is lost between its failed attempt
//!    and its registration.
//! 2. A source is deleted from the poller before its socket is closed;
//!    its waiters are then woken with [`IoWake::Closed`].
//! 3. Each waiter is completed once: the poller, its deadline timer and a
//!    close race for its claim flag; the loser does nothing.
//! 4. At most one thread blocks in `wait` (the poller itself returns at
//!    once to a second caller); `notify` wakes it.
//! 5. A waiter taken off its source to be woken counts in `delivering`
//!    until its goroutine is readied: until then [`Netpoll::has_waiters`]
//!    still sees it, so a deadlock check that finds neither a waiter nor
//!    a queued goroutine cannot fall between the two (Go's sysmon holds
//!    off checkdead with `incidlelocked` while it injects the same way).

use std::io;
use std::os::fd::{BorrowedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use polling::{Event, Events, PollMode, Poller};
use slab::Slab;

use crate::actor::GRef;
use crate::lockrank::{Guard, Lock, Rank};
use crate::timer::{Expiring, Timers};
use crate::wake::{IoWake, Wake};

/// A direction of interest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Waiting to read (or accept).
    Read,
    /// Waiting to write (or for a connect to finish).
    Write,
}

/// A goroutine waiting on a socket.
#[derive(Clone)]
pub struct IoWaiter {
    g: GRef,
    claimed: Arc<AtomicBool>,
    /// Its deadline timer, stopped when something else completes it.
    timer: Arc<AtomicU64>,
}

impl IoWaiter {
    /// A waiter for `g`.
    pub fn new(g: GRef) -> IoWaiter {
        IoWaiter {
            g,
            claimed: Arc::new(AtomicBool::new(false)),
            timer: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// Records the id of its deadline timer.
    pub fn set_timer(&self, id: u64) {
        self.timer.store(id, Ordering::Release);
    }

    /// Whether it has been completed.
    pub fn claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// Completes the waiter (invariant 3); false if already completed.
    fn complete(&self, why: IoWake) -> bool {
        if self.claimed.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.g.ready(Wake::Io(why));
        true
    }

    /// Completes the waiter before its deadline; its timer is stopped.
    fn wake(&self, why: IoWake, timers: &Timers) -> bool {
        if !self.complete(why) {
            return false;
        }
        let timer = self.timer.load(Ordering::Acquire);
        if timer != u64::MAX {
            timers.stop(timer);
        }
        true
    }
}

impl Expiring for IoWaiter {
    fn expire(&self) {
        self.complete(IoWake::Timeout);
    }

    fn waiting(&self) -> bool {
        !self.claimed()
    }
}

#[derive(Default)]
struct Source {
    fd: RawFd,
    readers: Vec<IoWaiter>,
    writers: Vec<IoWaiter>,
    /// An edge arrived while nobody waited (invariant 1).
    rready: bool,
    wready: bool,
}

/// The runtime's network poller.
pub struct Netpoll {
    poller: Poller,
    /// The runtime's timers: a waiter completed before its deadline
    /// stops its timer.
    timers: Arc<Timers>,
    sources: Lock<Slab<Source>>,
    /// A thread blocks in `wait` now.
    blocked: AtomicBool,
    /// Waiters taken off their sources, not yet readied (invariant 5).
    delivering: AtomicUsize,
}

impl Netpoll {
    /// A new poller for a runtime with these timers.
    pub fn new(timers: Arc<Timers>) -> io::Result<Netpoll> {
        Ok(Netpoll {
            poller: Poller::new()?,
            timers,
            sources: Lock::new(Rank::Netpoll, Slab::new()),
            blocked: AtomicBool::new(false),
            delivering: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> Guard<'_, Slab<Source>> {
        self.sources.lock()
    }

    /// Registers a socket; returns its key.
    ///
    /// # Safety
    /// `fd` must stay open until [`Netpoll::deregister`] is called for the
    /// key (the poller refers to it; `polling`'s contract).
    pub unsafe fn register(&self, fd: RawFd) -> io::Result<usize> {
        let mut s = self.lock();
        let key = s.insert(Source {
            fd,
            ..Source::default()
        });
        // SAFETY: the caller keeps `fd` open until it is deleted (above).
        if let Err(e) = unsafe {
            self.poller
                .add_with_mode(fd, Event::all(key), PollMode::Edge)
        } {
            s.remove(key);
            return Err(e);
        }
        Ok(key)
    }

    /// Removes a socket (before it is closed) and wakes its waiters with
    /// [`IoWake::Closed`].
    pub fn deregister(&self, key: usize) {
        let src = {
            let mut s = self.lock();
            let Some(src) = s.try_remove(key) else { return };
            // SAFETY: the fd is still open: the caller closes it after this.
            let fd = unsafe { BorrowedFd::borrow_raw(src.fd) };
            let _ = self.poller.delete(fd);
            self.delivering.fetch_add(1, Ordering::SeqCst);
            src
        };
        for w in src.readers.iter().chain(src.writers.iter()) {
            w.wake(IoWake::Closed, &self.timers);
        }
        self.delivering.fetch_sub(1, Ordering::SeqCst);
    }

    /// Adds a waiter for `dir` on socket `key`: `Ok(true)` when it is
    /// queued (park), `Ok(false)` when an edge came since the caller's last
    /// attempt (retry now; invariant 1).
    pub fn arm(&self, key: usize, dir: Dir, w: IoWaiter) -> io::Result<bool> {
        let mut s = self.lock();
        let Some(src) = s.get_mut(key) else {
            return Err(io::Error::new(io::ErrorKind::NotConnected, "closed"));
        };
        let (ready, list) = match dir {
            Dir::Read => (&mut src.rready, &mut src.readers),
            Dir::Write => (&mut src.wready, &mut src.writers),
        };
        if std::mem::take(ready) {
            return Ok(false);
        }
        // Waiters that timed out stay until an event or the next arm.
        list.retain(|x| !x.claimed());
        list.push(w);
        Ok(true)
    }

    /// Whether a goroutine waits on a socket (checkdead: such a goroutine
    /// is alive, the network may wake it).
    pub fn has_waiters(&self) -> bool {
        let s = self.lock();
        // Under the lock: a waiter taken off is counted in the same
        // critical section (invariant 5).
        self.delivering.load(Ordering::SeqCst) > 0
            || s.iter().any(|(_, src)| {
                src.readers
                    .iter()
                    .chain(src.writers.iter())
                    .any(|w| !w.claimed())
            })
    }

    /// Whether a thread blocks in [`Netpoll::poll`] now.
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` (None: forever, zero: do not block) for socket
    /// events and readies their goroutines; returns how many it readied.
    pub fn poll(&self, timeout: Option<Duration>) -> usize {
        let mut events = Events::new();
        let blocking = timeout != Some(Duration::ZERO);
        if blocking {
            self.blocked.store(true, Ordering::Release);
        }
        let r = self.poller.wait(&mut events, timeout);
        if blocking {
            self.blocked.store(false, Ordering::Release);
        }
        if r.is_err() {
            return 0;
        }
        let mut woken = Vec::new();
        {
            let mut s = self.lock();
            self.delivering.fetch_add(1, Ordering::SeqCst);
            for ev in events.iter() {
                let Some(src) = s.get_mut(ev.key) else {
                    continue;
                };
                if ev.readable {
                    src.readers.retain(|x| !x.claimed());
                    src.rready = src.readers.is_empty();
                    woken.append(&mut src.readers);
                }
                if ev.writable {
                    src.writers.retain(|x| !x.claimed());
                    src.wready = src.writers.is_empty();
                    woken.append(&mut src.writers);
                }
            }
        }
        let n = woken
            .iter()
            .filter(|w| w.wake(IoWake::Ready, &self.timers))
            .count();
        self.delivering.fetch_sub(1, Ordering::SeqCst);
        n
    }

    /// Wakes the thread blocked in [`Netpoll::poll`], if any.
    pub fn notify(&self) {
        let _ = self.poller.notify();
    }
}
