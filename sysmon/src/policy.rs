//! sysmon's policy: when to preempt, when to fire timers, how long to
//! sleep. Pure decisions over a [`Mechanism`], so they are tested with a
//! fake clock and a fake runtime.
//!
//! One round (Go's `sysmon` loop body, after its `usleep`):
//! 1. deep sleep: every P idle and no trace to print: sleep until the next
//!    timer (if no M is already waiting for it) or until woken;
//! 2. timers: fire what is due if no M is waiting for it;
//! 3. retake: preempt the G of every P whose `schedtick` has not moved for
//!    [`FORCE_PREEMPT_NS`] (Go's `sysmontick` comparison), and stop for
//!    good the G of every P whose actor has used up its CPU budget
//!    ([`over_budget`]);
//! 4. schedtrace, when asked for;
//! 5. the next sleep: [`MIN_DELAY_NS`] while rounds find work, doubling
//!    after [`IDLE_ROUNDS`] idle rounds, at most [`MAX_DELAY_NS`].

use std::time::Duration;

/// Why a collection runs (`runtime.stats().gc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum GcKind {
    /// An incremental step for an idle actor.
    IdleStep = 1,
    /// A full cycle forced after two minutes without one (Go's
    /// `forcegcperiod`).
    Periodic = 2,
    /// A full cycle because the actor passed 90% of its memory limit.
    Limit = 3,
}

impl GcKind {
    /// The kind of a `kind as u8` (None for 0 and unknown values).
    pub fn from_u8(v: u8) -> Option<GcKind> {
        match v {
            1 => Some(GcKind::IdleStep),
            2 => Some(GcKind::Periodic),
            3 => Some(GcKind::Limit),
            _ => None,
        }
    }
}

/// One actor's heap as sysmon sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ActorHeap {
    /// Actor id.
    pub id: u64,
    /// Not scheduled: no M runs it or will soon.
    pub idle: bool,
    /// Heap bytes when an M last left it.
    pub used: usize,
    /// Memory limit (0: none).
    pub limit: usize,
    /// Runtime clock (ns) of its last full collection (0: never).
    pub last_full: u64,
    /// Heap bytes right after its last collection.
    pub after_last: usize,
    /// A request is already pending.
    pub pending: bool,
}

/// A G running this long without a schedule tick is preempted (Go's
/// `forcePreemptNS`).
pub const FORCE_PREEMPT_NS: u64 = 10_000_000;
/// Shortest sleep between rounds (Go: 20 us).
pub const MIN_DELAY_NS: u64 = 20_000;
/// Longest sleep between rounds while some P runs (Go: 10 ms).
pub const MAX_DELAY_NS: u64 = 10_000_000;
/// Idle rounds before the sleep starts doubling (Go: 50).
pub const IDLE_ROUNDS: u32 = 50;
/// sysmon fires a timer itself only once it is this late: a running M
/// fires due timers between two goroutines, usually within microseconds,
/// and firing them from here as well would only contend with it.
pub const TIMER_GRACE_NS: u64 = 1_000_000;

/// A full collection is forced this long after an actor's last one, if it
/// allocated since (Go's `forcegcperiod`, 2 minutes).
pub const FORCE_GC_NS: u64 = 120_000_000_000;
/// A full collection when an actor's heap passes this share of its limit
/// (per mille).
pub const LIMIT_PERMILLE: usize = 900;
/// An idle actor gets an incremental step once its heap grew this much
/// since its last collection: garbage left by a burst of work is returned
/// while nothing runs.
pub const IDLE_STEP_GROWTH: usize = 1 << 20;
/// How often the GC policy looks at the actors.
pub const GC_CHECK_NS: u64 = 100_000_000;
/// sysmon polls the network itself when nobody has for this long (Go: 10 ms).
pub const NETPOLL_NS: u64 = 10_000_000;

/// A P in a blocking call is handed off once the call has lasted this long
/// even if nothing waits for it (the seed's 10 ms rule).
pub const SYSCALL_HANDOFF_NS: u64 = 10_000_000;

/// What sysmon reads of one P.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PState {
    /// Its M is running a G.
    pub running: bool,
    /// Gs resumed so far.
    pub schedtick: u64,
    /// Its M is in a blocking call and may lose the P.
    pub syscall: bool,
    /// Blocking calls entered so far.
    pub syscalltick: u64,
    /// Actors queued on it.
    pub runq: usize,
    /// When the CPU budget of the actor it runs runs out (None: no
    /// budget, or nothing runs).
    pub budget_end: Option<u64>,
}

/// Whether the G a P runs must be stopped: its actor's CPU budget has run
/// out. A preemption may have to wait for a C call to return (it yields);
/// a stop may not (it raises, in C calls and finalizers too).
pub fn over_budget(now: u64, st: &PState) -> bool {
    st.running && st.budget_end.is_some_and(|end| end <= now)
}

/// The mechanism sysmon drives: what it reads of the runtime and the
/// actions it asks for. Defined here, implemented by the runtime (`lugo-vm`
/// implements it over its scheduler), so the policy is tested with a fake.
pub trait Mechanism {
    /// Monotonic nanoseconds.
    fn now(&self) -> u64;
    /// Number of Ps.
    fn nprocs(&self) -> usize;
    /// State of P `p`.
    fn p_state(&self, p: usize) -> PState;
    /// Preempts the G running on P `p`.
    fn preempt(&self, p: usize);
    /// Stops the G P `p` runs for good: its actor is over its CPU budget.
    fn stop_over_budget(&self, p: usize);
    /// Gives P `p`, whose M is in a blocking call, to another M.
    fn handoff(&self, p: usize);
    /// Earliest pending timer.
    fn next_timer(&self) -> Option<u64>;
    /// Whether an idle M sleeps until the next timer (then sysmon leaves
    /// timers to it).
    fn timer_watched(&self) -> bool;
    /// Fires the timers due at `now`; returns how many fired.
    fn run_timers(&self, now: u64) -> usize;
    /// Prints one schedtrace line, `ms` after start.
    fn schedtrace(&self, ms: u64);
    /// Starts a leak check (`LUGO_DEBUG=leakcheck=1`) off this thread,
    /// unless one is under way: new leaks are reported, and ended too when
    /// `reclaim` (`leakcheck=2`).
    fn check_leaks(&self, reclaim: bool);
    /// Every actor's heap figures.
    fn actor_heaps(&self) -> Vec<ActorHeap>;
    /// Asks actor `id` for a collection.
    fn request_gc(&self, id: u64, kind: GcKind);
    /// When the network poller was last polled (runtime clock, ns).
    fn last_netpoll(&self) -> u64;
    /// Polls the network without blocking and readies the goroutines whose
    /// sockets are ready; returns how many.
    fn netpoll(&self, now: u64) -> usize;
    /// Whether the runtime is shutting down (sysmon exits).
    fn stopping(&self) -> bool;
    /// Whether any P's M runs a G now (checked before a deep sleep).
    fn any_running(&self) -> bool;
    /// sysmon enters (true) or leaves (false) a deep sleep: new work must
    /// wake it through its mailbox.
    fn deep_sleep(&self, sleeping: bool);
    /// Counts one round (`runtime.stats().sysmon_ticks`).
    fn count_round(&self);
}

/// The GC decision for one actor, if any.
pub fn gc_decision(now: u64, a: &ActorHeap) -> Option<GcKind> {
    if a.pending {
        return None;
    }
    let grew = a.used > a.after_last;
    if a.limit > 0 && grew && a.used >= a.limit / 1000 * LIMIT_PERMILLE {
        return Some(GcKind::Limit);
    }
    if a.used != a.after_last && now.saturating_sub(a.last_full) >= FORCE_GC_NS {
        return Some(GcKind::Periodic);
    }
    if a.idle && a.used >= a.after_last.saturating_add(IDLE_STEP_GROWTH) {
        return Some(GcKind::IdleStep);
    }
    None
}

/// What sysmon remembers of one P between rounds (Go's `sysmontick`).
#[derive(Clone, Copy, Debug, Default)]
struct SysmonTick {
    schedtick: u64,
    schedwhen: u64,
    syscalltick: u64,
    syscallwhen: u64,
}

/// How long to sleep before the next round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sleep {
    /// A short sleep; a wake-up message ends it early.
    For(Duration),
    /// Every P is idle: sleep until woken (or this long, the next timer).
    Deep(Option<Duration>),
}

/// The monitor's state.
pub struct Monitor {
    ticks: Vec<SysmonTick>,
    idle_rounds: u32,
    delay: u64,
    /// Print a schedtrace line every this many ns (0: never).
    trace_every: u64,
    next_trace: u64,
    start: u64,
    /// Preemptions asked for so far.
    pub preemptions: u64,
    next_gc_check: u64,
    /// Look for leaked goroutines every this many ns (0: never), ending
    /// them when `reclaim`.
    leak_every: u64,
    next_leak: u64,
    reclaim: bool,
}

impl Monitor {
    /// A monitor started at `now`, printing a schedtrace every
    /// `trace_every_ms` (0: never).
    pub fn new(now: u64, trace_every_ms: u64) -> Monitor {
        let trace_every = trace_every_ms.saturating_mul(1_000_000);
        Monitor {
            ticks: Vec::new(),
            idle_rounds: 0,
            delay: MIN_DELAY_NS,
            trace_every,
            next_trace: now.saturating_add(trace_every),
            start: now,
            preemptions: 0,
            next_gc_check: now.saturating_add(GC_CHECK_NS),
            leak_every: 0,
            next_leak: 0,
            reclaim: false,
        }
    }

    /// The monitor, also starting a leak check every `every_ms` from
    /// `now` (`LUGO_DEBUG=leakcheck`), that ends what it finds when
    /// `reclaim`.
    pub fn with_leakcheck(mut self, now: u64, every_ms: u64, reclaim: bool) -> Monitor {
        self.leak_every = every_ms.max(1).saturating_mul(1_000_000);
        self.next_leak = now.saturating_add(self.leak_every);
        self.reclaim = reclaim;
        self
    }

    /// One round; returns how long to sleep before the next.
    pub fn round(&mut self, host: &impl Mechanism) -> Sleep {
        let now = host.now();
        let n = host.nprocs();
        if self.ticks.len() < n {
            self.ticks.resize(n, SysmonTick::default());
        }
        let states: Vec<PState> = (0..n).map(|p| host.p_state(p)).collect();
        let mut worked = false;

        // Timers nobody else is watching, once overdue.
        let watched = host.timer_watched();
        if let Some(when) = host.next_timer() {
            if when.saturating_add(TIMER_GRACE_NS) <= now && !watched {
                worked |= host.run_timers(now) > 0;
            }
        }

        // Network: poll if nobody has for a while.
        if now.saturating_sub(host.last_netpoll()) >= NETPOLL_NS {
            worked |= host.netpoll(now) > 0;
        }

        // retake: Ps stuck in a blocking call (Go's `retake`, _Psyscall)
        let idle_ps = states.iter().filter(|s| !s.running && !s.syscall).count();
        for (p, st) in states.iter().enumerate() {
            let t = &mut self.ticks[p];
            if !st.syscall {
                t.syscalltick = st.syscalltick;
                continue;
            }
            if t.syscalltick != st.syscalltick {
                // First seen in this call: give it at least one round.
                t.syscalltick = st.syscalltick;
                t.syscallwhen = now;
                continue;
            }
            // Keep the P with its M if nothing waits for it, another P is
            // idle, and the call is young; else hand it off.
            if st.runq == 0 && idle_ps > 0 && t.syscallwhen + SYSCALL_HANDOFF_NS > now {
                continue;
            }
            host.handoff(p);
            // A new call must be seen before the next handoff.
            t.syscalltick = u64::MAX;
            worked = true;
        }

        // retake: Gs that run too long
        for (p, st) in states.iter().enumerate() {
            let t = &mut self.ticks[p];
            if !st.running || st.syscall {
                t.schedtick = st.schedtick;
                t.schedwhen = now;
                continue;
            }
            if over_budget(now, st) {
                // Each round while it lasts: a finalizer turns hooks off
                // again for the next one.
                host.stop_over_budget(p);
            }
            if t.schedtick != st.schedtick {
                t.schedtick = st.schedtick;
                t.schedwhen = now;
            } else if t.schedwhen.saturating_add(FORCE_PREEMPT_NS) <= now {
                host.preempt(p);
                self.preemptions += 1;
                // Give the G a full slice again before the next attempt.
                // Not "work" for the sleep (Go's retake counts only Ps
                // retaken from syscalls): the next look is due at the end
                // of that slice anyway, and 20 us rounds meanwhile would
                // cost a spinning program thousands of wake-ups a second.
                t.schedwhen = now;
            }
        }

        if now >= self.next_gc_check {
            self.next_gc_check = now.saturating_add(GC_CHECK_NS);
            for a in host.actor_heaps() {
                if let Some(kind) = gc_decision(now, &a) {
                    host.request_gc(a.id, kind);
                }
            }
        }

        if self.leak_every > 0 && now >= self.next_leak {
            host.check_leaks(self.reclaim);
            self.next_leak = now.saturating_add(self.leak_every);
        }

        if self.trace_every > 0 && now >= self.next_trace {
            host.schedtrace((now - self.start) / 1_000_000);
            self.next_trace = now.saturating_add(self.trace_every);
        }

        if worked {
            self.idle_rounds = 0;
            self.delay = MIN_DELAY_NS;
        } else {
            self.idle_rounds += 1;
            if self.idle_rounds > IDLE_ROUNDS {
                self.delay = (self.delay * 2).min(MAX_DELAY_NS);
            }
        }

        let all_idle = states.iter().all(|s| !s.running);
        if all_idle && self.trace_every == 0 {
            // Deep sleep: nothing to preempt. Wake for the next timer only
            // if no M waits for it.
            let mut until = host
                .next_timer()
                .filter(|_| !host.timer_watched())
                .map(|when| when.saturating_sub(now));
            if self.leak_every > 0 {
                // An idle program is when leaks show: look on time.
                let due = self.next_leak.saturating_sub(now).max(MIN_DELAY_NS);
                until = Some(until.map_or(due, |u| u.min(due)));
            }
            return Sleep::Deep(until.map(Duration::from_nanos));
        }
        let mut d = self.delay;
        // Wake when the first running G's slice ends, not up to a whole
        // delay later: preemption lands at 10 ms, not 10 to 20.
        for (p, st) in states.iter().enumerate() {
            if st.running {
                let mut due = self.ticks[p].schedwhen.saturating_add(FORCE_PREEMPT_NS);
                if let Some(end) = st.budget_end {
                    // Look again when the budget runs out; once it has,
                    // every slice.
                    due = due.min(if end > now { end } else { due });
                }
                d = d.min(due.saturating_sub(now).max(MIN_DELAY_NS));
            }
        }
        if let Some(when) = host.next_timer().filter(|_| !host.timer_watched()) {
            let due = when.saturating_add(TIMER_GRACE_NS);
            d = d.min(due.saturating_sub(now).max(MIN_DELAY_NS));
        }
        if self.trace_every > 0 {
            d = d.min(self.next_trace.saturating_sub(now).max(MIN_DELAY_NS));
        }
        if self.leak_every > 0 {
            d = d.min(self.next_leak.saturating_sub(now).max(MIN_DELAY_NS));
        }
        Sleep::For(Duration::from_nanos(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    /// A runtime whose clock and Ps the test sets.
    #[derive(Default)]
    struct Fake {
        now: Cell<u64>,
        ps: RefCell<Vec<PState>>,
        preempted: RefCell<Vec<usize>>,
        stopped: RefCell<Vec<usize>>,
        handed: RefCell<Vec<usize>>,
        timer: Cell<Option<u64>>,
        watched: Cell<bool>,
        fired: Cell<usize>,
        traces: RefCell<Vec<u64>>,
        heaps: RefCell<Vec<ActorHeap>>,
        gc_requests: RefCell<Vec<(u64, GcKind)>>,
        polled: RefCell<Vec<u64>>,
        leak_checks: RefCell<Vec<(u64, bool)>>,
    }

    impl Mechanism for Fake {
        fn now(&self) -> u64 {
            self.now.get()
        }
        fn nprocs(&self) -> usize {
            self.ps.borrow().len()
        }
        fn p_state(&self, p: usize) -> PState {
            self.ps.borrow()[p]
        }
        fn preempt(&self, p: usize) {
            self.preempted.borrow_mut().push(p);
        }
        fn stop_over_budget(&self, p: usize) {
            self.stopped.borrow_mut().push(p);
        }
        fn handoff(&self, p: usize) {
            self.handed.borrow_mut().push(p);
            self.ps.borrow_mut()[p].syscall = false;
        }
        fn next_timer(&self) -> Option<u64> {
            self.timer.get()
        }
        fn timer_watched(&self) -> bool {
            self.watched.get()
        }
        fn run_timers(&self, now: u64) -> usize {
            match self.timer.get() {
                Some(t) if t <= now => {
                    self.timer.set(None);
                    self.fired.set(self.fired.get() + 1);
                    1
                }
                _ => 0,
            }
        }
        fn schedtrace(&self, ms: u64) {
            self.traces.borrow_mut().push(ms);
        }
        fn check_leaks(&self, reclaim: bool) {
            self.leak_checks
                .borrow_mut()
                .push((self.now.get(), reclaim));
        }
        fn actor_heaps(&self) -> Vec<ActorHeap> {
            self.heaps.borrow().clone()
        }
        fn request_gc(&self, id: u64, kind: GcKind) {
            self.gc_requests.borrow_mut().push((id, kind));
        }
        fn last_netpoll(&self) -> u64 {
            self.polled.borrow().last().copied().unwrap_or(0)
        }
        fn netpoll(&self, now: u64) -> usize {
            self.polled.borrow_mut().push(now);
            0
        }

        fn stopping(&self) -> bool {
            false
        }

        fn any_running(&self) -> bool {
            self.ps.borrow().iter().any(|p| p.running)
        }

        fn deep_sleep(&self, _sleeping: bool) {}

        fn count_round(&self) {}
    }

    fn fake(ps: &[PState]) -> Fake {
        let f = Fake::default();
        *f.ps.borrow_mut() = ps.to_vec();
        f
    }

    const MS: u64 = 1_000_000;

    fn running(schedtick: u64) -> PState {
        PState {
            running: true,
            schedtick,
            ..PState::default()
        }
    }

    #[test]
    fn preempts_a_g_that_runs_10ms_without_a_tick() {
        let f = fake(&[running(5), running(7)]);
        let mut m = Monitor::new(0, 0);
        m.round(&f);
        f.now.set(9 * MS);
        f.ps.borrow_mut()[1].schedtick = 8; // P1 keeps scheduling
        m.round(&f);
        assert!(f.preempted.borrow().is_empty(), "9 ms is not too long");
        f.now.set(10 * MS);
        m.round(&f);
        assert_eq!(*f.preempted.borrow(), vec![0], "P0 stuck for 10 ms");
        // Preempted once per slice, not on every round.
        f.now.set(11 * MS);
        m.round(&f);
        assert_eq!(f.preempted.borrow().len(), 1);
        f.now.set(20 * MS);
        f.ps.borrow_mut()[1].schedtick = 9;
        m.round(&f);
        assert_eq!(
            *f.preempted.borrow(),
            vec![0, 0],
            "still stuck a slice later"
        );
        assert_eq!(m.preemptions, 2);
    }

    #[test]
    fn stops_a_g_whose_actor_is_over_budget_in_each_round() {
        let mut over = running(5);
        over.budget_end = Some(3 * MS);
        let mut within = running(7);
        within.budget_end = Some(50 * MS);
        let f = fake(&[over, within, running(9)]);
        let mut m = Monitor::new(0, 0);
        f.now.set(2 * MS);
        match m.round(&f) {
            Sleep::For(d) => assert!(d <= Duration::from_millis(1), "wakes at the budget's end"),
            Sleep::Deep(_) => panic!("Gs run"),
        }
        assert!(f.stopped.borrow().is_empty(), "nobody is over budget yet");
        f.now.set(3 * MS);
        m.round(&f);
        f.now.set(4 * MS);
        m.round(&f);
        assert_eq!(
            *f.stopped.borrow(),
            vec![0, 0],
            "the over-budget P, each round"
        );
        assert!(
            f.preempted.borrow().is_empty(),
            "a stop is not a preemption"
        );
        assert!(
            !over_budget(10 * MS, &PState::default()),
            "an idle P is never stopped"
        );
    }

    fn in_syscall(tick: u64, runq: usize) -> PState {
        PState {
            running: true,
            syscall: true,
            syscalltick: tick,
            runq,
            ..PState::default()
        }
    }

    #[test]
    fn a_young_syscall_keeps_its_p_while_nothing_waits() {
        let f = fake(&[in_syscall(1, 0), PState::default()]);
        let mut m = Monitor::new(0, 0);
        m.round(&f);
        f.now.set(5 * MS);
        m.round(&f);
        assert!(
            f.handed.borrow().is_empty(),
            "an idle P exists and nothing waits"
        );
        f.now.set(10 * MS);
        m.round(&f);
        assert_eq!(*f.handed.borrow(), vec![0], "over 10 ms: handed off");
        assert!(
            f.preempted.borrow().is_empty(),
            "a G in a syscall is not preempted"
        );
    }

    #[test]
    fn a_syscall_is_handed_off_at_once_when_work_waits() {
        let f = fake(&[in_syscall(1, 2), PState::default()]);
        let mut m = Monitor::new(0, 0);
        m.round(&f);
        assert!(f.handed.borrow().is_empty(), "seen once first");
        f.now.set(MS / 10);
        m.round(&f);
        assert_eq!(*f.handed.borrow(), vec![0], "its run queue is not empty");
    }

    #[test]
    fn a_syscall_is_handed_off_when_no_p_is_idle() {
        let f = fake(&[in_syscall(1, 0), running(3)]);
        let mut m = Monitor::new(0, 0);
        m.round(&f);
        f.now.set(MS / 10);
        f.ps.borrow_mut()[1].schedtick = 4;
        m.round(&f);
        assert_eq!(*f.handed.borrow(), vec![0]);
    }

    #[test]
    fn an_idle_p_is_never_preempted() {
        let f = fake(&[PState::default()]);
        let mut m = Monitor::new(0, 0);
        for t in 0..100 {
            f.now.set(t * MS);
            m.round(&f);
        }
        assert!(f.preempted.borrow().is_empty());
    }

    #[test]
    fn sleep_doubles_after_idle_rounds_up_to_10ms() {
        let f = fake(&[running(1)]);
        let mut m = Monitor::new(0, 0);
        let mut delays = Vec::new();
        for i in 0..70 {
            f.ps.borrow_mut()[0].schedtick = i; // busy but healthy
            match m.round(&f) {
                Sleep::For(d) => delays.push(d.as_nanos() as u64),
                s => panic!("unexpected {s:?}"),
            }
        }
        assert!(delays[..IDLE_ROUNDS as usize]
            .iter()
            .all(|&d| d == MIN_DELAY_NS));
        assert_eq!(delays[IDLE_ROUNDS as usize], 2 * MIN_DELAY_NS);
        assert_eq!(*delays.last().unwrap(), MAX_DELAY_NS);
    }

    #[test]
    fn a_preemption_does_not_bring_back_short_sleeps() {
        // A G that never yields: sysmon settles to sleeping until each
        // slice's end, and preempting it does not make it poll every 20 us.
        let f = fake(&[running(1)]);
        let mut m = Monitor::new(0, 0);
        let mut now = 0;
        let mut wakeups_after_first_preempt = 0;
        for _ in 0..2000 {
            let d = match m.round(&f) {
                Sleep::For(d) => d.as_nanos() as u64,
                s => panic!("unexpected {s:?}"),
            };
            if !f.preempted.borrow().is_empty() {
                wakeups_after_first_preempt += 1;
            }
            now += d;
            f.now.set(now);
            if now > 200 * MS {
                break;
            }
        }
        let preempts = f.preempted.borrow().len();
        assert!(preempts >= 15, "preempted every slice: {preempts}");
        // About one round per slice (plus the first ramp), not 50+.
        assert!(
            wakeups_after_first_preempt < 3 * preempts,
            "{wakeups_after_first_preempt} rounds for {preempts} preemptions"
        );
    }

    #[test]
    fn wakes_when_a_running_g_slice_ends() {
        let f = fake(&[running(1)]);
        let mut m = Monitor::new(0, 0);
        for _ in 0..200 {
            m.round(&f); // the tick never moves: idle rounds, long delay
            f.ps.borrow_mut()[0].schedtick += 1;
        }
        f.now.set(4 * MS);
        f.ps.borrow_mut()[0].schedtick += 1;
        assert_eq!(m.round(&f), Sleep::For(Duration::from_millis(10)));
        f.now.set(7 * MS);
        assert_eq!(
            m.round(&f),
            Sleep::For(Duration::from_millis(7)),
            "due at 14 ms"
        );
    }

    #[test]
    fn deep_sleep_when_every_p_is_idle() {
        let f = fake(&[PState::default(), PState::default()]);
        let mut m = Monitor::new(0, 0);
        assert_eq!(m.round(&f), Sleep::Deep(None));
        f.timer.set(Some(5 * MS));
        assert_eq!(m.round(&f), Sleep::Deep(Some(Duration::from_millis(5))));
        f.watched.set(true);
        assert_eq!(m.round(&f), Sleep::Deep(None), "an M waits for the timer");
    }

    #[test]
    fn fires_due_timers_nobody_watches() {
        let f = fake(&[running(1)]);
        let mut m = Monitor::new(0, 0);
        f.timer.set(Some(3 * MS));
        f.watched.set(true);
        f.now.set(5 * MS);
        m.round(&f);
        assert_eq!(f.fired.get(), 0, "an M watches it");
        f.watched.set(false);
        f.now.set(3 * MS + TIMER_GRACE_NS / 2);
        m.round(&f);
        assert_eq!(f.fired.get(), 0, "a running M may still fire it");
        f.now.set(3 * MS + TIMER_GRACE_NS);
        m.round(&f);
        assert_eq!(f.fired.get(), 1, "overdue: sysmon fires it");
    }

    #[test]
    fn sleeps_no_longer_than_the_next_unwatched_timer() {
        let f = fake(&[running(1)]);
        let mut m = Monitor::new(0, 0);
        for i in 0..200 {
            f.ps.borrow_mut()[0].schedtick = i;
            m.round(&f);
        }
        f.timer.set(Some(2 * MS));
        assert_eq!(
            m.round(&f),
            Sleep::For(Duration::from_millis(3)),
            "due + grace"
        );
    }

    const MB: usize = 1 << 20;

    fn heap(used: usize, after_last: usize) -> ActorHeap {
        ActorHeap {
            id: 1,
            used,
            after_last,
            ..ActorHeap::default()
        }
    }

    #[test]
    fn gc_periodic_after_two_minutes_if_it_allocated() {
        let busy = heap(5 * MB, 4 * MB);
        assert_eq!(gc_decision(FORCE_GC_NS - 1, &busy), None);
        assert_eq!(gc_decision(FORCE_GC_NS, &busy), Some(GcKind::Periodic));
        let quiet = heap(4 * MB, 4 * MB);
        assert_eq!(
            gc_decision(10 * FORCE_GC_NS, &quiet),
            None,
            "nothing allocated"
        );
    }

    #[test]
    fn gc_full_near_the_memory_limit() {
        let mut a = heap(91 * MB, 10 * MB);
        a.limit = 100 * MB;
        assert_eq!(gc_decision(0, &a), Some(GcKind::Limit));
        a.used = 80 * MB;
        assert_eq!(gc_decision(0, &a), None, "below 90%");
        a.used = 95 * MB;
        a.after_last = 95 * MB;
        assert_eq!(
            gc_decision(0, &a),
            None,
            "all live: collecting again frees nothing"
        );
        a.used = 96 * MB;
        a.pending = true;
        assert_eq!(gc_decision(0, &a), None, "already asked");
    }

    #[test]
    fn gc_steps_for_idle_actors_that_grew() {
        let mut a = heap(3 * MB, MB);
        assert_eq!(
            gc_decision(0, &a),
            None,
            "running actors collect as they allocate"
        );
        a.idle = true;
        assert_eq!(gc_decision(0, &a), Some(GcKind::IdleStep));
        a.used = MB + MB / 2;
        assert_eq!(gc_decision(0, &a), None, "grew less than the threshold");
    }

    #[test]
    fn gc_policy_runs_every_100ms() {
        let f = fake(&[PState::default()]);
        *f.heaps.borrow_mut() = vec![ActorHeap {
            idle: true,
            ..heap(8 * MB, MB)
        }];
        let mut m = Monitor::new(0, 0);
        m.round(&f);
        assert!(f.gc_requests.borrow().is_empty(), "not yet");
        f.now.set(GC_CHECK_NS);
        m.round(&f);
        assert_eq!(*f.gc_requests.borrow(), vec![(1, GcKind::IdleStep)]);
    }

    #[test]
    fn polls_the_network_when_nobody_has_for_10ms() {
        let f = fake(&[running(1)]);
        let mut m = Monitor::new(0, 0);
        for t in [1, 5, 10, 12, 19, 20, 25] {
            f.now.set(t * MS);
            m.round(&f);
        }
        assert_eq!(*f.polled.borrow(), vec![10 * MS, 20 * MS]);
    }

    #[test]
    fn schedtrace_on_its_period() {
        let f = fake(&[PState::default()]);
        let mut m = Monitor::new(0, 1000);
        for t in [0, 500, 1000, 1500, 2100] {
            f.now.set(t * MS);
            let s = m.round(&f);
            assert!(matches!(s, Sleep::For(_)), "tracing keeps sysmon awake");
        }
        assert_eq!(*f.traces.borrow(), vec![1000, 2100]);
    }

    #[test]
    fn leak_checks_on_their_period_even_when_idle() {
        let f = fake(&[PState::default()]);
        let mut m = Monitor::new(0, 0).with_leakcheck(0, 100, true);
        let mut sleeps = Vec::new();
        for t in [0, 50, 100, 150, 230] {
            f.now.set(t * MS);
            sleeps.push(m.round(&f));
        }
        assert_eq!(
            *f.leak_checks.borrow(),
            vec![(100 * MS, true), (230 * MS, true)]
        );
        // Idle: a deep sleep, but never past the next check.
        match sleeps[0] {
            Sleep::Deep(Some(d)) => assert_eq!(d, Duration::from_millis(100)),
            ref s => panic!("{s:?}"),
        }
    }
}
