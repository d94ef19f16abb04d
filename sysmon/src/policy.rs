//! sysmon's policy: when to preempt, when to fire timers, how long to
//! sleep. Pure decisions over a [`Host`], so they are tested with a fake
//! clock and a fake runtime.
//!
//! One round (Go's `sysmon` loop body, after its `usleep`):
//! 1. deep sleep: every P idle and no trace to print: sleep until the next
//!    timer (if no M is already waiting for it) or until woken;
//! 2. timers: fire what is due if no M is waiting for it;
//! 3. retake: preempt the G of every P whose `schedtick` has not moved for
//!    [`FORCE_PREEMPT_NS`] (Go's `sysmontick` comparison);
//! 4. schedtrace, when asked for;
//! 5. the next sleep: [`MIN_DELAY_NS`] while rounds find work, doubling
//!    after [`IDLE_ROUNDS`] idle rounds, at most [`MAX_DELAY_NS`].

use std::time::Duration;

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

/// What sysmon reads of one P.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PState {
    /// Its M is running a G.
    pub running: bool,
    /// Gs resumed so far.
    pub schedtick: u64,
}

/// The mechanism sysmon drives (implemented over `lugo_vm::Runtime`).
pub trait Host {
    /// Monotonic nanoseconds.
    fn now(&self) -> u64;
    /// Number of Ps.
    fn nprocs(&self) -> usize;
    /// State of P `p`.
    fn p_state(&self, p: usize) -> PState;
    /// Preempts the G running on P `p`.
    fn preempt(&self, p: usize);
    /// Earliest pending timer.
    fn next_timer(&self) -> Option<u64>;
    /// Whether an idle M sleeps until the next timer (then sysmon leaves
    /// timers to it).
    fn timer_watched(&self) -> bool;
    /// Fires the timers due at `now`; returns how many fired.
    fn run_timers(&self, now: u64) -> usize;
    /// Prints one schedtrace line, `ms` after start.
    fn schedtrace(&self, ms: u64);
}

/// What sysmon remembers of one P between rounds (Go's `sysmontick`).
#[derive(Clone, Copy, Debug, Default)]
struct SysmonTick {
    schedtick: u64,
    schedwhen: u64,
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
        }
    }

    /// One round; returns how long to sleep before the next.
    pub fn round(&mut self, host: &impl Host) -> Sleep {
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

        // retake
        for (p, st) in states.iter().enumerate() {
            let t = &mut self.ticks[p];
            if !st.running {
                t.schedtick = st.schedtick;
                t.schedwhen = now;
                continue;
            }
            if t.schedtick != st.schedtick {
                t.schedtick = st.schedtick;
                t.schedwhen = now;
            } else if t.schedwhen.saturating_add(FORCE_PREEMPT_NS) <= now {
                host.preempt(p);
                self.preemptions += 1;
                // Give the G a full slice again before the next attempt.
                t.schedwhen = now;
                worked = true;
            }
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
            let until = host
                .next_timer()
                .filter(|_| !host.timer_watched())
                .map(|when| Duration::from_nanos(when.saturating_sub(now)));
            return Sleep::Deep(until);
        }
        let mut d = self.delay;
        // Wake when the first running G's slice ends, not up to a whole
        // delay later: preemption lands at 10 ms, not 10 to 20.
        for (p, st) in states.iter().enumerate() {
            if st.running {
                let due = self.ticks[p].schedwhen.saturating_add(FORCE_PREEMPT_NS);
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
        timer: Cell<Option<u64>>,
        watched: Cell<bool>,
        fired: Cell<usize>,
        traces: RefCell<Vec<u64>>,
    }

    impl Host for Fake {
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
}
