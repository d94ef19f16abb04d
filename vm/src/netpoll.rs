//! The network poller: one epoll instance for the whole runtime, wrapped
//! by `Epoll` (the one wrapper of that OS facility, STYLE.md item 8;
//! lugo's own, not `polling`'s: it needs `EPOLLRDHUP`, invariant 6, and
//! waits with a nanosecond timeout without re-arming a timer each time).
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
//! 3. Each waiter is completed once: the poller, its deadline timer, a
//!    close, its socket's context and an interrupt race for its park's
//!    claim (`GRef::claim`); the losers do nothing.
//! 4. At most one thread blocks in `wait` (the poller itself returns at
//!    once to a second caller); `notify` wakes it.
//! 5. A waiter taken off its source to be woken counts in `delivering`
//!    until its goroutine is readied: until then [`Netpoll::has_waiters`]
//!    still sees it, so a deadlock check that finds neither a waiter nor
//!    a queued goroutine cannot fall between the two (Go's sysmon holds
//!    off checkdead with `incidlelocked` while it injects the same way).
//! 6. Each source counts the readable edges it has seen ([`Readiness`],
//!    read by its socket without the poller's lock). A read that came
//!    back short emptied the socket as of its start: until the next edge,
//!    another read would find nothing ([`Readiness::surely_empty`]) and
//!    the goroutine parks without trying it. Every byte that arrives
//!    after an edge was reported brings another edge (edge-triggered
//!    epoll queues the source again on each arrival once its last event
//!    was taken), so no data waits unseen. An end of stream or an error
//!    can arrive with data in one edge and stays after a short read:
//!    once an edge says so (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`), reads
//!    are always tried.

use std::io;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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

/// A goroutine waiting on a socket: completed once, by whoever claims
/// its park first (readiness, its deadline, a close, its context, an
/// interrupt).
#[derive(Clone)]
pub struct IoWaiter {
    g: GRef,
    /// Its deadline timer, stopped when something else completes it.
    timer: Arc<AtomicU64>,
}

impl IoWaiter {
    /// A waiter for `g`.
    pub fn new(g: GRef) -> IoWaiter {
        IoWaiter {
            g,
            timer: Arc::new(AtomicU64::new(u64::MAX)),
        }
    }

    /// Records the id of its deadline timer.
    pub fn set_timer(&self, id: u64) {
        self.timer.store(id, Ordering::Release);
    }

    /// Whether it has been completed.
    pub fn claimed(&self) -> bool {
        !self.g.is_open()
    }

    /// Completes the waiter (invariant 3); false if already completed.
    fn complete(&self, why: IoWake) -> bool {
        if !self.g.claim() {
            return false;
        }
        self.g.ready_claimed(Wake::Io(why));
        true
    }

    /// Completes the waiter because its context ended (the deadline
    /// timer, if any, finds it completed when it fires); false if it was
    /// completed already.
    pub fn cancel(&self) -> bool {
        self.complete(IoWake::Canceled)
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

/// A source's readable edges, shared with its socket (invariant 6).
#[derive(Debug, Default)]
pub struct Readiness {
    /// Readable edges seen so far.
    edges: AtomicU32,
    /// 1 + the edge count when the last read that came back short began;
    /// 0: none.
    drained: AtomicU32,
    /// An edge said the stream ended or failed: reads are always tried.
    ended: AtomicBool,
}

impl Readiness {
    /// A token for a read about to begin: the edges seen so far.
    pub fn before_read(&self) -> u32 {
        self.edges.load(Ordering::Acquire)
    }

    /// The read begun at `token` came back short (or would block): it
    /// emptied the socket.
    pub fn drained(&self, token: u32) {
        self.drained.store(token.wrapping_add(1), Ordering::Release);
    }

    /// Whether a read now would find nothing: one came back short and no
    /// edge came since it began.
    pub fn surely_empty(&self) -> bool {
        let d = self.drained.load(Ordering::Acquire);
        d != 0
            && d == self.edges.load(Ordering::Acquire).wrapping_add(1)
            && !self.ended.load(Ordering::Acquire)
    }

    /// A readable edge arrived; `ended`: it says the stream ended or
    /// failed (marked before the edge is counted).
    fn edge(&self, ended: bool) {
        if ended {
            self.ended.store(true, Ordering::Release);
        }
        self.edges.fetch_add(1, Ordering::AcqRel);
    }
}

#[derive(Default)]
struct Source {
    fd: RawFd,
    readiness: Arc<Readiness>,
    readers: Vec<IoWaiter>,
    writers: Vec<IoWaiter>,
    /// An edge arrived while nobody waited (invariant 1).
    rready: bool,
    wready: bool,
}

/// One event of [`Epoll::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ready {
    key: usize,
    readable: bool,
    writable: bool,
    /// The stream's read side ended, or it failed.
    ended: bool,
}

/// The key of the notifier's event.
const NOTIFY_KEY: u64 = u64::MAX;

/// The most events one wait takes (more wait for the next).
const EVENTS: usize = 256;

/// epoll, edge-triggered, with an eventfd to wake a waiter.
struct Epoll {
    ep: OwnedFd,
    /// An eventfd, level-triggered: readable while a notification is
    /// pending.
    notifier: OwnedFd,
    /// A notification is pending (written, not yet taken by a wait).
    notified: AtomicBool,
    /// `epoll_pwait2` is there (Linux 5.11): nanosecond timeouts.
    pwait2: AtomicBool,
}

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: plain system calls; each descriptor returned is owned
        // here at once (`OwnedFd`), so it is closed on every path.
        unsafe {
            let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
            if ep < 0 {
                return Err(io::Error::last_os_error());
            }
            let ep = OwnedFd::from_raw_fd(ep);
            let n = libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK);
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            let notifier = OwnedFd::from_raw_fd(n);
            let e = Epoll {
                ep,
                notifier,
                notified: AtomicBool::new(false),
                pwait2: AtomicBool::new(true),
            };
            e.ctl(libc::EPOLL_CTL_ADD, n, libc::EPOLLIN as u32, NOTIFY_KEY)?;
            Ok(e)
        }
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32, key: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: key };
        // SAFETY: `ev` lives across the call; the kernel only reads it. A
        // stale or foreign `fd` makes the call fail, nothing worse.
        match unsafe { libc::epoll_ctl(self.ep.as_raw_fd(), op, fd, &mut ev) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// Watches `fd` for both directions, edge-triggered, as `key`.
    fn add(&self, fd: RawFd, key: usize) -> io::Result<()> {
        let events = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
        self.ctl(libc::EPOLL_CTL_ADD, fd, events as u32, key as u64)
    }

    fn delete(&self, fd: RawFd) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout` (None: forever) for events, appended to
    /// `out`; a notification ends the wait (and is taken).
    fn wait(&self, out: &mut Vec<Ready>, timeout: Option<Duration>) -> io::Result<()> {
        let mut evs = [libc::epoll_event { events: 0, u64: 0 }; EVENTS];
        let n = self.wait_raw(&mut evs, timeout)?;
        for ev in &evs[..n] {
            let (bits, key) = (ev.events, ev.u64);
            if key == NOTIFY_KEY {
                // Cleared before the counter is read: a notification
                // that comes between is written again, never lost.
                self.notified.store(false, Ordering::Release);
                let mut v = 0u64;
                // SAFETY: reads 8 bytes into `v` from the eventfd (it
                // fails harmlessly when already drained).
                unsafe { libc::read(self.notifier.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
                continue;
            }
            out.push(ready_of(bits, key));
        }
        Ok(())
    }

    fn wait_raw(
        &self,
        evs: &mut [libc::epoll_event; EVENTS],
        timeout: Option<Duration>,
    ) -> io::Result<usize> {
        let ep = self.ep.as_raw_fd();
        let max = EVENTS as libc::c_int;
        if self.pwait2.load(Ordering::Relaxed) {
            let ts = timeout.map(|d| libc::timespec {
                tv_sec: d.as_secs().min(i64::MAX as u64) as libc::time_t,
                tv_nsec: d.subsec_nanos() as libc::c_long,
            });
            let tsp = ts
                .as_ref()
                .map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `evs` has room for `max` events and `tsp` is null or
            // points at `ts`, alive across the call; no signal mask.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    ep,
                    evs.as_mut_ptr(),
                    max,
                    tsp,
                    0usize,
                    0usize,
                )
            };
            match r {
                r if r >= 0 => return Ok(r as usize),
                _ => {
                    let e = io::Error::last_os_error();
                    match e.raw_os_error() {
                        Some(libc::EINTR) => return Ok(0),
                        // Missing (or refused by an old seccomp filter).
                        Some(libc::ENOSYS | libc::EPERM) => {
                            self.pwait2.store(false, Ordering::Relaxed)
                        }
                        _ => return Err(e),
                    }
                }
            }
        }
        // Milliseconds, rounded up: never earlier than asked.
        let ms = timeout.map_or(-1, |d| {
            d.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        // SAFETY: `evs` has room for `max` events.
        let r = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), max, ms) };
        match r {
            r if r >= 0 => Ok(r as usize),
            _ => match io::Error::last_os_error() {
                e if e.raw_os_error() == Some(libc::EINTR) => Ok(0),
                e => Err(e),
            },
        }
    }

    /// Ends the current wait, or the next one.
    fn notify(&self) {
        if !self.notified.swap(true, Ordering::AcqRel) {
            let one = 1u64;
            // SAFETY: writes 8 bytes from `one` to the eventfd (it cannot
            // overflow: it is drained whenever it is seen).
            unsafe { libc::write(self.notifier.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }
}

/// What epoll's event bits `bits` for `key` say.
fn ready_of(bits: u32, key: u64) -> Ready {
    let has = |m: libc::c_int| bits & m as u32 != 0;
    let failed = has(libc::EPOLLHUP) || has(libc::EPOLLERR);
    Ready {
        key: key as usize,
        readable: has(libc::EPOLLIN) || has(libc::EPOLLRDHUP) || has(libc::EPOLLPRI) || failed,
        writable: has(libc::EPOLLOUT) || failed,
        ended: has(libc::EPOLLRDHUP) || failed,
    }
}

/// The runtime's network poller.
pub struct Netpoll {
    poller: Epoll,
    /// The runtime's timers: a waiter completed before its deadline
    /// stops its timer.
    timers: Arc<Timers>,
    sources: Lock<Slab<Source>>,
    /// A thread blocks in `wait` now.
    blocked: AtomicBool,
    /// Waiters taken off their sources, not yet readied (invariant 5).
    delivering: AtomicUsize,
    /// Sources registered now.
    nsources: AtomicUsize,
}

impl Netpoll {
    /// A new poller for a runtime with these timers.
    pub fn new(timers: Arc<Timers>) -> io::Result<Netpoll> {
        Ok(Netpoll {
            poller: Epoll::new()?,
            timers,
            sources: Lock::new(Rank::Netpoll, Slab::new()),
            blocked: AtomicBool::new(false),
            delivering: AtomicUsize::new(0),
            nsources: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> Guard<'_, Slab<Source>> {
        self.sources.lock()
    }

    /// Registers a socket; returns its key and its readiness (invariant
    /// 6).
    ///
    /// # Safety
    /// `fd` must stay open until [`Netpoll::deregister`] is called for the
    /// key: the poller refers to it by number, and a number reused by
    /// another open file would get this key's events.
    pub unsafe fn register(&self, fd: RawFd) -> io::Result<(usize, Arc<Readiness>)> {
        let readiness = Arc::new(Readiness::default());
        let mut s = self.lock();
        let key = s.insert(Source {
            fd,
            readiness: readiness.clone(),
            ..Source::default()
        });
        // The caller keeps `fd` open until it is deleted (its contract).
        if let Err(e) = self.poller.add(fd, key) {
            s.remove(key);
            return Err(e);
        }
        self.nsources.fetch_add(1, Ordering::Relaxed);
        Ok((key, readiness))
    }

    /// Removes a socket (before it is closed) and wakes its waiters with
    /// [`IoWake::Closed`].
    pub fn deregister(&self, key: usize) {
        let src = {
            let mut s = self.lock();
            let Some(src) = s.try_remove(key) else { return };
            self.nsources.fetch_sub(1, Ordering::Relaxed);
            // The fd is still open: the caller closes it after this.
            let _ = self.poller.delete(src.fd);
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

    /// Whether any socket is registered (a poll could find something).
    pub fn has_sources(&self) -> bool {
        self.nsources.load(Ordering::Relaxed) > 0
    }

    /// Whether a thread blocks in [`Netpoll::poll`] now.
    pub fn is_blocked(&self) -> bool {
        self.blocked.load(Ordering::Acquire)
    }

    /// Waits up to `timeout` (None: forever, zero: do not block) for socket
    /// events and readies their goroutines; returns how many it readied.
    pub fn poll(&self, timeout: Option<Duration>) -> usize {
        let mut events = Vec::new();
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
            for ev in &events {
                let Some(src) = s.get_mut(ev.key) else {
                    continue;
                };
                if ev.readable {
                    src.readiness.edge(ev.ended);
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
        if !woken.is_empty() {
            crate::trace::instant("netpoll");
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
        self.poller.notify();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_short_read_means_empty_until_the_next_edge() {
        let r = Readiness::default();
        assert!(!r.surely_empty(), "nothing known at first");
        let t = r.before_read();
        r.drained(t);
        assert!(r.surely_empty());
        r.edge(false);
        assert!(!r.surely_empty(), "an edge since: data may be there");
        // A read that began before an edge proves nothing about after it.
        let t = r.before_read();
        r.edge(false);
        r.drained(t);
        assert!(!r.surely_empty());
        // An end of stream stays after a short read.
        r.edge(true);
        let t = r.before_read();
        r.drained(t);
        assert!(!r.surely_empty(), "the end is still to be read");
    }

    #[test]
    fn data_after_a_drain_brings_an_edge() {
        let np = Netpoll::new(Arc::new(Timers::default())).expect("a poller");
        let (mut a, mut b) = UnixStream::pair().expect("a pair");
        b.set_nonblocking(true).expect("nonblocking");
        // SAFETY: `b` stays open until it is deregistered at the end.
        let (key, ready) = unsafe { np.register(b.as_raw_fd()) }.expect("registered");
        np.poll(Some(Duration::ZERO));
        for round in 0..3 {
            a.write_all(b"line\n").expect("written");
            np.poll(Some(Duration::from_secs(5)));
            assert!(!ready.surely_empty(), "round {round}: an edge came");
            let t = ready.before_read();
            let mut buf = [0u8; 64];
            assert_eq!(b.read(&mut buf).expect("read"), 5);
            ready.drained(t);
            assert!(ready.surely_empty(), "round {round}: drained");
            let e = b.read(&mut buf).expect_err("empty");
            assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        }
        // The last bytes and the end in one edge: after the short read the
        // end is still to be read, so the read is tried.
        a.write_all(b"last\n").expect("written");
        a.shutdown(std::net::Shutdown::Write).expect("half closed");
        np.poll(Some(Duration::from_secs(5)));
        let t = ready.before_read();
        let mut buf = [0u8; 64];
        assert_eq!(b.read(&mut buf).expect("read"), 5);
        ready.drained(t);
        assert!(!ready.surely_empty(), "the end is still to be read");
        assert_eq!(b.read(&mut buf).expect("the end"), 0);
        np.deregister(key);
    }

    #[test]
    fn a_notification_ends_the_current_or_the_next_wait() {
        let np = Netpoll::new(Arc::new(Timers::default())).expect("a poller");
        np.notify();
        np.notify();
        let t = std::time::Instant::now();
        np.poll(Some(Duration::from_secs(10)));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the pending notification ends it"
        );
        // Taken: the next wait runs to its timeout.
        let t = std::time::Instant::now();
        np.poll(Some(Duration::from_millis(20)));
        assert!(
            t.elapsed() >= Duration::from_millis(20),
            "no notification left"
        );
        std::thread::scope(|sc| {
            sc.spawn(|| {
                while !np.is_blocked() {
                    std::thread::yield_now();
                }
                np.notify();
            });
            np.poll(None);
        });
    }

    #[test]
    fn without_epoll_pwait2_a_wait_lasts_its_timeout_rounded_up() {
        let ep = Epoll::new().expect("epoll");
        ep.pwait2.store(false, Ordering::Relaxed);
        let t = std::time::Instant::now();
        ep.wait(&mut Vec::new(), Some(Duration::from_micros(1500)))
            .expect("waited");
        assert!(t.elapsed() >= Duration::from_micros(1500));
        ep.notify();
        let mut out = Vec::new();
        ep.wait(&mut out, None).expect("notified");
        assert!(out.is_empty(), "a notification is no socket's event");
    }

    #[test]
    fn event_bits() {
        let ready = |bits: libc::c_int| ready_of(bits as u32, 7);
        let r = ready(libc::EPOLLIN);
        assert!(r.readable && !r.writable && !r.ended && r.key == 7);
        let r = ready(libc::EPOLLIN | libc::EPOLLRDHUP);
        assert!(r.readable && r.ended && !r.writable);
        let r = ready(libc::EPOLLOUT);
        assert!(!r.readable && r.writable && !r.ended);
        let r = ready(libc::EPOLLERR);
        assert!(r.readable && r.writable && r.ended);
        let r = ready(libc::EPOLLHUP);
        assert!(r.readable && r.writable && r.ended);
    }
}
