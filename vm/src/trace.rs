//! The scheduler trace (`lugo --trace=FILE`, `LUGO_TRACE=FILE`) and the
//! flight recorder (`LUGO_DEBUG=flightrecorder=1`): what the Ms did, as
//! events written in the Chrome trace-event JSON format that Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! Each thread appends its events to a buffer of its own, without a lock,
//! and moves them in batches (every [`BATCH`] events, and whenever its M
//! lets go of an actor, `flush`) to a list the writer can read; the
//! writer merges the lists. Timestamps are the CPU's time-stamp counter
//! where there is one (x86-64: a few ns to read, against tens for the
//! clock), turned into the runtime clock's nanoseconds when written, from
//! two readings of both taken at the start and at the write. What is
//! recorded:
//! - a goroutine's run on an M: a slice on its P's track, named `G17`,
//!   with its actor and how it ended (`parked: chan receive`, `preempted`,
//!   `yielded`, `exited`, `panicked`), and again on its M's track (the
//!   thread whose buffer holds it);
//! - a wake-up: a flow arrow from the goroutine (or the timer, the poller)
//!   that readied a goroutine to the start of that goroutine's next run
//!   (a run's first wake-up goes with the run's record: its arrow leaves
//!   from the run's end);
//! - a goroutine's start (`go`), with its parent;
//! - instants on the P's track: blocking calls and hand-offs, timers fired,
//!   sockets polled, collections asked for.
//!
//! The flight recorder keeps only each thread's last [`RING`] events (at
//! least `RING - BATCH`) and
//! writes `lugo-flight-<pid>.json` on a panic, a deadlock, SIGQUIT or
//! `runtime.flightrecord(path)`. It is opt-in: its cost on the goroutine
//! switch (two clock readings and two records per run) is more than the
//! 5% the issue allows for an always-on recorder (see the closing note).
//!
//! Invariants: while neither is on, each event site costs one relaxed
//! load of `ON`; a thread's own buffer is touched by that thread only;
//! the events a thread has not moved yet (fewer than [`BATCH`], of an M
//! in the middle of a slice) are not in what is written meanwhile.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// Whether events are recorded (a trace or the flight recorder).
static ON: AtomicBool = AtomicBool::new(false);
/// 1: keep every event (a trace); 2: the last [`RING`] per thread.
static MODE: AtomicU8 = AtomicU8::new(0);
/// The time-stamp counter and the clock, read together at the start.
static T0: Mutex<(u64, u64)> = Mutex::new((0, 0));

/// Events a thread keeps before it moves them where the writer reads.
pub const BATCH: usize = 256;

/// A timestamp: the time-stamp counter (x86-64), else the clock's ns.
#[inline]
fn stamp() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` reads the time-stamp counter; it has no
        // preconditions and touches no memory.
        unsafe { core::arch::x86_64::_rdtsc() }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        crate::clock::now_ns()
    }
}

/// Turns stamps into the runtime clock's ns: a line through the start's
/// readings and the write's.
fn to_ns() -> impl Fn(u64) -> u64 {
    let (s0, n0) = *T0.lock().unwrap_or_else(|e| e.into_inner());
    let (s1, n1) = (stamp(), crate::clock::now_ns());
    let rate = if s1 > s0 && n1 > n0 {
        (n1 - n0) as f64 / (s1 - s0) as f64
    } else {
        1.0
    };
    move |s| n0.saturating_add_signed(((s as f64 - s0 as f64) * rate) as i64)
}

fn mark_start() {
    *T0.lock().unwrap_or_else(|e| e.into_inner()) = (stamp(), crate::clock::now_ns());
}

/// Events the flight recorder keeps per thread.
pub const RING: usize = 1 << 14;

/// How a run of a goroutine ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// It parked, for this reason.
    Parked(crate::wake::WaitReason),
    /// Sysmon preempted it.
    Preempted,
    /// It yielded (`runtime.gosched`).
    Yielded,
    /// It returned or called `goexit`.
    Exited,
    /// It raised and nothing caught it.
    Panicked,
}

/// The P of a thread that serves none (sysmon, a host).
const NO_P: u16 = u16::MAX;

/// One recorded event: 40 bytes (timestamps: stamps until written, then
/// the runtime clock's ns).
#[derive(Clone, Debug)]
enum Ev {
    /// Goroutine `g` of `actor` ran on P `p` from `start` to `end`, and
    /// readied goroutine `woke` (0: none) meanwhile (further wake-ups of
    /// the run are events of their own).
    Run {
        start: u64,
        end: u64,
        g: u64,
        woke: u64,
        actor: u32,
        p: u16,
        how: End,
    },
    /// `from` (0: not a goroutine) readied `to` at `ts`, on P `p`.
    Wake { ts: u64, from: u64, to: u64, p: u16 },
    /// Goroutine `g` started `child`.
    Go { ts: u64, g: u64, child: u64, p: u16 },
    /// Something else that happened on P `p`.
    Instant { ts: u64, name: &'static str, p: u16 },
}

/// What a thread has moved where the writer reads: whole batches (no copy,
/// no growth of one long buffer); the flight recorder drops the oldest
/// batch past [`RING`] events.
type Buf = Arc<Mutex<std::collections::VecDeque<Vec<Ev>>>>;

/// Every thread's buffer, for the writer.
static BUFS: Mutex<Vec<Buf>> = Mutex::new(Vec::new());

/// A thread's own recording state (one thread-local: one lookup an event).
struct Local {
    /// Events not moved yet.
    events: Vec<Ev>,
    /// The P this thread serves ([`set_p`]; [`NO_P`]: none).
    p: u16,
    /// The first goroutine the run going on here has readied (0: none):
    /// it goes with the run's record (one event, one stamp less).
    woke: u64,
    /// Where its batches go; made at its first batch.
    buf: Option<Buf>,
}

impl Local {
    fn buf(&mut self) -> &Buf {
        self.buf.get_or_insert_with(|| {
            let b: Buf = Arc::default();
            BUFS.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(b.clone());
            b
        })
    }

    /// Moves the events not moved yet where the writer reads them.
    fn flush(&mut self) {
        if self.events.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.events, Vec::with_capacity(BATCH));
        let ring = MODE.load(Ordering::Relaxed) == 2;
        let mut q = self.buf().lock().unwrap_or_else(|e| e.into_inner());
        q.push_back(batch);
        while ring && q.len() > RING / BATCH {
            q.pop_front();
        }
    }
}

thread_local! {
    static LOCAL: std::cell::RefCell<Local> = const {
        std::cell::RefCell::new(Local { events: Vec::new(), p: NO_P, woke: 0, buf: None })
    };
}

/// Whether events are being recorded.
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Starts recording every event (a trace).
pub fn start_trace() {
    mark_start();
    MODE.store(1, Ordering::Relaxed);
    ON.store(true, Ordering::Release);
}

/// Starts the flight recorder (the last events of each thread).
pub fn start_flight_recorder() {
    if MODE.load(Ordering::Relaxed) == 0 {
        mark_start();
        MODE.store(2, Ordering::Relaxed);
    }
    ON.store(true, Ordering::Release);
}

/// Whether the flight recorder (not a full trace) is what runs.
pub fn is_flight_recorder() -> bool {
    on() && MODE.load(Ordering::Relaxed) == 2
}

/// Records the event `make` builds from this thread's P and state.
#[inline]
fn push(make: impl FnOnce(&mut Local) -> Ev) {
    let _ = LOCAL.try_with(|l| {
        let mut l = l.borrow_mut();
        let ev = make(&mut l);
        l.events.push(ev);
        if l.events.len() >= BATCH {
            l.flush();
        }
    });
}

/// Moves this thread's events where the writer reads them (the scheduler
/// calls it as an M lets go of an actor, and as the program ends; every
/// [`BATCH`] events it happens by itself).
#[inline]
pub fn flush() {
    if on() {
        let _ = LOCAL.try_with(|l| l.borrow_mut().flush());
    }
}

/// The P this thread serves from now on (the scheduler says so as an M
/// takes or leaves one).
pub fn set_p(p: Option<usize>) {
    let _ =
        LOCAL.try_with(|l| l.borrow_mut().p = p.map_or(NO_P, |p| p.min(NO_P as usize - 1) as u16));
}

/// A timestamp for the start of a run ([`run`]).
#[inline]
pub fn now() -> u64 {
    stamp()
}

/// A goroutine's run on this M ended (`start` from [`now`]).
pub fn run(g: u64, actor: u64, start: u64, how: End) {
    let end = stamp();
    push(|l| Ev::Run {
        start,
        end,
        g,
        woke: std::mem::take(&mut l.woke),
        actor: actor as u32,
        p: l.p,
        how,
    });
}

/// Goroutine `to` was readied (by the goroutine this M runs, if any).
/// Each event function costs a relaxed load while nothing is recorded.
#[inline]
pub fn wake(to: u64) {
    if on() {
        record_wake(to);
    }
}

#[cold]
fn record_wake(to: u64) {
    let from = crate::preempt::current_slot().map_or(0, |s| s.gid());
    // The first of a run's wake-ups goes with the run's record (the arrow
    // then leaves from the run's end).
    let folded = from != 0
        && LOCAL
            .try_with(|l| {
                let mut l = l.borrow_mut();
                (l.woke == 0).then(|| l.woke = to).is_some()
            })
            .unwrap_or(false);
    if folded {
        return;
    }
    let ts = stamp();
    push(|l| Ev::Wake {
        ts,
        from,
        to,
        p: l.p,
    });
}

/// Goroutine `child` was started (by the goroutine this M runs, if any).
#[inline]
pub fn go(child: u64) {
    if on() {
        record_go(child);
    }
}

#[cold]
fn record_go(child: u64) {
    let g = crate::preempt::current_slot().map_or(0, |s| s.gid());
    let ts = stamp();
    push(|l| Ev::Go {
        ts,
        g,
        child,
        p: l.p,
    });
}

/// Something happened on this thread's P (or off any P).
#[inline]
pub fn instant(name: &'static str) {
    if on() {
        record_instant(name);
    }
}

#[cold]
fn record_instant(name: &'static str) {
    let ts = stamp();
    push(|l| Ev::Instant { ts, name, p: l.p });
}

/// The name of how a run ended, as the trace shows it.
fn end_name(how: End) -> String {
    match how {
        End::Parked(r) => format!("parked: {}", r.as_str()),
        End::Preempted => "preempted".into(),
        End::Yielded => "yielded".into(),
        End::Exited => "exited".into(),
        End::Panicked => "panicked".into(),
    }
}

/// The track (Chrome's `tid`) of P `p`, or of the threads without one.
fn tid(p: u16) -> u32 {
    match p {
        NO_P => 1000,
        p => u32::from(p),
    }
}

/// Microseconds, as the format wants them (with ns precision).
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// The events recorded so far as Chrome trace-event JSON (every thread's
/// buffer, merged by time); the buffers are kept.
pub fn json() -> String {
    flush();
    let ns = to_ns();
    let mut evs: Vec<Ev> = Vec::new();
    // Each run again on the track of the thread (the M) that made it.
    let mut m_runs: Vec<(usize, Ev)> = Vec::new();
    for (m, b) in BUFS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .enumerate()
    {
        let q = b.lock().unwrap_or_else(|e| e.into_inner());
        for e in q.iter().flatten() {
            if matches!(e, Ev::Run { .. }) {
                m_runs.push((m, e.clone()));
            }
            evs.push(e.clone());
        }
    }
    for e in &mut evs {
        match e {
            Ev::Run { start, end, .. } => {
                *start = ns(*start);
                *end = ns(*end);
            }
            Ev::Wake { ts, .. } | Ev::Go { ts, .. } | Ev::Instant { ts, .. } => *ts = ns(*ts),
        }
    }
    // A run's folded wake-up, as a wake-up of its own at the run's end.
    let folded: Vec<Ev> = evs
        .iter()
        .filter_map(|e| match *e {
            Ev::Run {
                end, g, woke, p, ..
            } if woke != 0 => Some(Ev::Wake {
                ts: end,
                from: g,
                to: woke,
                p,
            }),
            _ => None,
        })
        .collect();
    evs.extend(folded);
    let ts_of = |e: &Ev| match e {
        Ev::Run { start, .. } => *start,
        Ev::Wake { ts, .. } | Ev::Go { ts, .. } | Ev::Instant { ts, .. } => *ts,
    };
    evs.sort_by_key(ts_of);
    let mut out = String::from("{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n");
    let mut first = true;
    let mut emit = |s: String| {
        if !first {
            out.push_str(",\n");
        }
        first = false;
        out.push_str(&s);
    };
    emit(r#"{"name":"process_name","ph":"M","pid":1,"tid":0,"args":{"name":"lugo"}}"#.into());
    let mut tids: Vec<u32> = evs
        .iter()
        .map(|e| match e {
            Ev::Run { p, .. } => tid(*p),
            Ev::Wake { p, .. } | Ev::Go { p, .. } | Ev::Instant { p, .. } => tid(*p),
        })
        .collect();
    tids.sort_unstable();
    tids.dedup();
    for t in tids {
        let name = if t == 1000 {
            "sysmon, hosts".to_string()
        } else {
            format!("P{t}")
        };
        emit(format!(
            r#"{{"name":"thread_name","ph":"M","pid":1,"tid":{t},"args":{{"name":"{name}"}}}}"#
        ));
    }
    for (i, e) in evs.iter().enumerate() {
        match e {
            Ev::Run {
                p,
                g,
                actor,
                start,
                end,
                how,
                ..
            } => emit(format!(
                r#"{{"name":"G{g}","cat":"goroutine","ph":"X","pid":1,"tid":{},"ts":{},"dur":{},"args":{{"g":{g},"actor":{actor},"end":"{}"}}}}"#,
                tid(*p),
                us(*start),
                us(end.saturating_sub(*start)),
                end_name(*how)
            )),
            Ev::Wake { p, ts, from, to } => {
                // Unique: the event's place in the trace.
                let flow = i + 1;
                let who = if *from == 0 {
                    "runtime".to_string()
                } else {
                    format!("G{from}")
                };
                emit(format!(
                    r#"{{"name":"wake G{to}","cat":"wake","ph":"i","s":"t","pid":1,"tid":{},"ts":{},"args":{{"by":"{who}","g":{to}}}}}"#,
                    tid(*p),
                    us(*ts)
                ));
                // The arrow: from the wake to the start of the woken
                // goroutine's next run.
                let next = evs[i + 1..].iter().find_map(|n| match n {
                    Ev::Run { p, g, start, .. } if g == to && *start >= *ts => Some((*p, *start)),
                    _ => None,
                });
                if let Some((np, start)) = next {
                    emit(format!(
                        r#"{{"name":"wake","cat":"wake","ph":"s","id":{flow},"pid":1,"tid":{},"ts":{}}}"#,
                        tid(*p),
                        us(*ts)
                    ));
                    emit(format!(
                        r#"{{"name":"wake","cat":"wake","ph":"f","bp":"e","id":{flow},"pid":1,"tid":{},"ts":{}}}"#,
                        tid(np),
                        us(start)
                    ));
                }
            }
            Ev::Go { p, ts, g, child } => emit(format!(
                r#"{{"name":"go G{child}","cat":"go","ph":"i","s":"t","pid":1,"tid":{},"ts":{},"args":{{"parent":{g},"g":{child}}}}}"#,
                tid(*p),
                us(*ts)
            )),
            Ev::Instant { p, ts, name } => emit(format!(
                r#"{{"name":"{name}","cat":"runtime","ph":"i","s":"t","pid":1,"tid":{},"ts":{}}}"#,
                tid(*p),
                us(*ts)
            )),
        }
    }
    let mut ms: Vec<usize> = m_runs.iter().map(|(m, _)| *m).collect();
    ms.sort_unstable();
    ms.dedup();
    for m in ms {
        emit(format!(
            r#"{{"name":"thread_name","ph":"M","pid":2,"tid":{m},"args":{{"name":"M{m}"}}}}"#
        ));
    }
    if !m_runs.is_empty() {
        emit(
            r#"{"name":"process_name","ph":"M","pid":2,"tid":0,"args":{"name":"lugo Ms"}}"#.into(),
        );
    }
    for (m, e) in m_runs {
        if let Ev::Run {
            g, start, end, p, ..
        } = e
        {
            emit(format!(
                r#"{{"name":"G{g}","cat":"goroutine","ph":"X","pid":2,"tid":{m},"ts":{},"dur":{},"args":{{"g":{g},"p":{}}}}}"#,
                us(ns(start)),
                us(ns(end).saturating_sub(ns(start))),
                tid(p)
            ));
        }
    }
    let _ = write!(out, "\n]}}\n");
    out
}

/// Writes what has been recorded to `path` (a trace at the end, or the
/// flight recorder's last events).
pub fn write(path: &std::path::Path) -> std::io::Result<()> {
    std::fs::write(path, json())
}

/// Writes the flight recorder's events to `lugo-flight-<pid>.json` in the
/// working directory, if it runs; the path written.
pub fn dump_flight() -> Option<std::path::PathBuf> {
    if !is_flight_recorder() {
        return None;
    }
    let path = std::path::PathBuf::from(format!("lugo-flight-{}.json", std::process::id()));
    write(&path).ok().map(|()| path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_units() {
        assert_eq!(us(1_234_567), "1234.567");
        assert_eq!(us(999), "0.999");
        assert_eq!(
            end_name(End::Parked(crate::wake::WaitReason::ChanSend)),
            "parked: chan send"
        );
        assert_eq!(tid(NO_P), 1000);
        assert_eq!(tid(2), 2);
        assert!(
            std::mem::size_of::<Ev>() <= 40,
            "an event is 40 bytes at most"
        );
    }
}
