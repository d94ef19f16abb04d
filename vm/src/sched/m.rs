//! M: the schedule loop of one OS thread.
//!
//! An M serves one P. It finds a runnable actor (`Shared::find_runnable`)
//! and runs its Gs one after another (`Shared::run_actor`) until the
//! actor has nothing runnable or its slice is used up while others wait.
//!
//! Resuming a G and reading what it yielded:
//!
//! | the G's thread...                         | the M...                                  |
//! |-------------------------------------------|-------------------------------------------|
//! | returned                                  | removes the G (the main G: program exits) |
//! | yielded `SCHED, KIND_PARK + reason`       | marks it `Waiting`, or re-queues it if it was woken meanwhile |
//! | yielded `SCHED, KIND_GOSCHED`             | puts it at the back of the actor's queue  |
//! | yielded `SCHED, KIND_EXIT`                | removes the G (it called `os.exit`)       |
//! | returned `SCHED, KIND_PANIC, msg, tb`     | ends the program with a panic report      |
//! | raised past its body's protected call     | the same, without a traceback (out of memory in the handler) |

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::p::PStatus;
use super::policy::{
    after_turn, checkdead, route_panic, IdleSnapshot, PanicRoute, SliceEnd, Turn, Verdict,
};
use super::{dump, lock, Idle, Shared, ACTOR_SLICE_NS, GLOBAL_QUEUE_EVERY};
use crate::actor::{Actor, ActorQueue};
use crate::clock::now_ns;
use crate::ffi::{self, Resumed};
use crate::g::{GKey, GStatus};
use crate::host::Outcome;
use crate::lockrank::Guard;

thread_local! {
    static CURRENT_P: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The P held by this thread, if it is an M.
pub(crate) fn current_p() -> Option<usize> {
    Some(CURRENT_P.get()).filter(|&p| p != usize::MAX)
}

/// Sets the P this thread serves (a spare M taking or leaving one).
pub(crate) fn set_current_p(p: Option<usize>) {
    CURRENT_P.set(p.unwrap_or(usize::MAX));
    crate::trace::set_p(p);
}

/// How a goroutine's run ended, for the trace.
fn trace_end(res: &Resumed) -> crate::trace::End {
    use crate::trace::End;
    match res {
        Resumed::Parked(r) => End::Parked(*r),
        Resumed::Preempted => End::Preempted,
        Resumed::Gosched => End::Yielded,
        Resumed::Exited => End::Exited,
        Resumed::Panicked(..) => End::Panicked,
    }
}

/// Body of an M thread.
pub(crate) fn m_main(shared: Arc<Shared>, pid: usize) {
    set_current_p(Some(pid));
    let p = &shared.ps[pid];
    p.home.bind(shared.config.face.hidden_source.as_bytes());
    let _ = p.home_thread.set(std::thread::current());
    while let Some(actor) = shared.find_runnable(pid) {
        shared.run(pid, &actor);
    }
    shared.live_ms.fetch_sub(1, Ordering::AcqRel);
}

/// How long an M that finds no work looks again before it parks.
const SPIN: Duration = Duration::from_micros(50);

/// The G id a running slot shows while its M runs Lua of an actor's own
/// on the state's main thread, outside any G: a collection and the
/// finalizers it runs, posted tasks, closing the state. It is watched as a
/// G would be: sysmon preempts and stops it, the CPU budget counts.
pub(crate) const STATE_GID: u64 = (1 << 56) - 1;

impl Shared {
    /// Runs `actor` for a slice on P `pid` (an M's or a spare's), and
    /// drops its state if it ended.
    pub(crate) fn run(&self, pid: usize, actor: &Arc<Actor>) {
        if actor.is_closed() {
            return;
        }
        actor.with_state(|| self.run_actor(pid, actor, 0));
        if actor.has_ended() {
            // Outside `with_state`: the state's own lock is released.
            on_main_thread(actor, |slot| {
                if self.cpu_budget_ns > 0 {
                    let left = self.cpu_budget_ns.saturating_sub(actor.cpu_used());
                    slot.set_budget_end(now_ns().saturating_add(left));
                }
                actor.close_state();
                slot.set_budget_end(u64::MAX);
            });
        }
    }
}

/// Runs `f`, Lua of `actor`'s own on its main thread outside any G (a
/// collection and the finalizers it runs, opening or closing the state,
/// posted tasks), published in this M's running slot as a G is: sysmon
/// preempts and stops it, the CPU budget counts.
fn on_main_thread<R>(actor: &Actor, f: impl FnOnce(&crate::preempt::Running) -> R) -> R {
    let slot = crate::preempt::current_slot().expect("an M has a running slot");
    slot.publish(actor.main_thread.0, STATE_GID);
    let r = f(slot);
    slot.clear();
    r
}

/// Go's panic report: message, blank line, the goroutine and its stack.
/// `hidden`: the Lua face's chunk, whose frames are left out.
fn panic_report(gid: u64, msg: &str, tb: &str, hidden: &str) -> String {
    // An error raised past the goroutine's protected call carries its
    // traceback in the message (mlua appends it).
    let (msg, tb) = match (tb.is_empty(), msg.split_once("\nstack traceback:\n")) {
        (true, Some((m, t))) => (m, t),
        _ => (msg, tb),
    };
    format!(
        "panic: {msg}\n\ngoroutine {gid} [running]:\n{}",
        dump::format_traceback(tb, hidden)
    )
}

/// Takes `actor`'s queue lock on the M that runs it, and applies the
/// readies this M deferred meanwhile.
fn relock(actor: &Actor) -> Guard<'_, ActorQueue> {
    let mut q = actor.lock();
    q.apply_deferred();
    q
}

/// What a G's turn leaves to do once the queue lock is let go.
enum Unlocked {
    /// The actor's main G returned: the actor (or the program) ends.
    MainReturned,
    /// A G raised an uncaught error, to be routed.
    Panic(PanicRoute, String, String),
}

/// The time of one run of an actor: its slice, and its CPU budget.
struct SliceClock {
    start: Instant,
    /// Start of the time not yet charged to the actor's budget.
    mark: Instant,
    /// The budget in ns (0: none).
    budget: u64,
}

impl SliceClock {
    /// Starts the run; under a budget, tells sysmon when it runs out if
    /// the actor runs on (it stops the actor then, also inside a C call
    /// no preemption can yield from).
    fn new(budget: u64, actor: &Actor, slot: &crate::preempt::Running) -> SliceClock {
        let start = Instant::now();
        if budget > 0 {
            let left = budget.saturating_sub(actor.cpu_used());
            slot.set_budget_end(now_ns().saturating_add(left));
        }
        SliceClock {
            start,
            mark: start,
            budget,
        }
    }

    /// Charges the time run so far; whether it is past the budget.
    fn over_budget(&mut self, actor: &Actor, slot: &crate::preempt::Running) -> bool {
        if self.budget == 0 {
            return false;
        }
        let used = actor.charge_cpu(&mut self.mark);
        if used > self.budget {
            return true;
        }
        slot.set_budget_end(now_ns().saturating_add(self.budget - used));
        false
    }

    /// Whether the run is longer than a slice.
    fn slice_over(&self) -> bool {
        self.start.elapsed() > Duration::from_nanos(ACTOR_SLICE_NS)
    }

    /// Charges the rest of the run.
    fn finish(&mut self, actor: &Actor, slot: &crate::preempt::Running) {
        if self.budget > 0 {
            actor.charge_cpu(&mut self.mark);
            slot.set_budget_end(u64::MAX);
        }
    }
}

impl Shared {
    /// Finds an actor to run, or `None` when the runtime stops.
    fn find_runnable(&self, pid: usize) -> Option<Arc<Actor>> {
        let p = &self.ps[pid];
        loop {
            if self.stopping() {
                return None;
            }
            if pid >= self.nprocs() {
                // Retired by gomaxprocs: hand the queue over and wait.
                let work = p.drain();
                if !work.is_empty() {
                    lock(&self.global).extend(work);
                    self.wake_one();
                }
                self.park_idle(pid, false);
                continue;
            }
            if let Some(a) = self.try_find(pid) {
                return Some(a);
            }
            if self.poll_network() {
                if let Some(a) = self.try_find(pid) {
                    return Some(a);
                }
            }
            if let Some(a) = self.spin(pid) {
                return Some(a);
            }
            self.park_idle(pid, true);
        }
    }

    /// Polls the network without blocking, unless a thread blocks in the
    /// poller (it sees the events first) or no socket is open; whether a
    /// goroutine was readied. Go's findrunnable does the same before it
    /// spins: a socket that became ready while every M was busy is served
    /// by the first M to run out of work, without a wake-up.
    fn poll_network(&self) -> bool {
        if self.netpoll.is_blocked() || !self.netpoll.has_sources() {
            return false;
        }
        let n = self.netpoll.poll(Some(Duration::ZERO));
        self.last_netpoll.store(now_ns(), Ordering::Relaxed);
        n > 0
    }

    /// Looks for work for up to [`SPIN`] before the M parks, if no other M
    /// does (Go's spinning M): work that comes soon, a goroutine readied
    /// by a host thread or another M streaming with this one, is taken
    /// without a wake-up on either side.
    fn spin(&self, pid: usize) -> Option<Arc<Actor>> {
        if self
            .spinning
            .compare_exchange(0, 1, Ordering::SeqCst, Ordering::Relaxed)
            .is_err()
        {
            return None;
        }
        let start = Instant::now();
        let found = loop {
            for _ in 0..64 {
                std::hint::spin_loop();
            }
            if self.stopping() {
                break None;
            }
            if let Some(a) = self.try_find(pid) {
                break Some(a);
            }
            if start.elapsed() >= SPIN || self.host_wants_p.load(Ordering::Relaxed) > 0 {
                // Long enough, or a host thread wants the P for a call.
                break None;
            }
        };
        // Before `park_idle` looks at the global queue again (see
        // `Shared::an_m_spins`).
        self.spinning.store(0, Ordering::SeqCst);
        found
    }

    /// One look for work for P `pid`, without parking: due timers, the
    /// global queue first every 61st tick, the local queue, the global
    /// queue, stealing.
    pub(crate) fn try_find(&self, pid: usize) -> Option<Arc<Actor>> {
        let p = &self.ps[pid];
        self.timers.run_due(now_ns());
        let tick = p.schedtick.load(Ordering::Relaxed);
        if tick.is_multiple_of(GLOBAL_QUEUE_EVERY) {
            if let Some(a) = self.pop_global() {
                return Some(a);
            }
        }
        p.pop()
            .or_else(|| self.pop_global())
            .or_else(|| self.steal(pid))
    }

    /// Takes half of another P's queue; returns one actor, queues the rest.
    fn steal(&self, pid: usize) -> Option<Arc<Actor>> {
        let n = self.nprocs();
        let start = fastrand::usize(..n.max(1));
        for i in 0..n {
            let victim = (start + i) % n;
            if victim == pid || self.ps[victim].len() == 0 {
                continue;
            }
            let mut stolen = self.ps[victim].steal_half().into_iter();
            if let Some(first) = stolen.next() {
                for a in stolen {
                    let overflow = self.ps[pid].push(a);
                    lock(&self.global).extend(overflow);
                }
                return Some(first);
            }
        }
        None
    }

    /// Parks this M until woken; only `active` Ms (of Ps below
    /// `gomaxprocs`) take timer duty.
    fn park_idle(&self, pid: usize, active: bool) {
        let mut idle = lock(&self.idle);
        if self.stopping() || !self.global_is_empty() {
            return;
        }
        let mut timeout = None;
        idle.nidle += 1;
        let next = self.timers.next_deadline();
        match checkdead(&self.idle_snapshot(&idle, next)) {
            Verdict::Park => {}
            Verdict::LookAgain => {
                // A wake-up is on its way (sysmon fires a timer).
                idle.nidle -= 1;
                drop(idle);
                std::thread::yield_now();
                return;
            }
            verdict => {
                idle.nidle -= 1;
                drop(idle);
                match verdict {
                    Verdict::Exit => self.finish(Outcome::Exit(0)),
                    Verdict::Deadlock => self.finish(Outcome::Deadlock(self.deadlock_report())),
                    _ => {
                        // The runtime goes on: the host may start more work.
                        let report = self.deadlock_report();
                        self.host
                            .end_all(|| crate::host::TaskEnd::Deadlock(report.clone()));
                    }
                }
                return;
            }
        }
        if let (true, Some(when)) = (active, next) {
            if idle.timer_m.is_none() || idle.timer_m == Some(pid) {
                idle.timer_m = Some(pid);
                self.timer_watched.store(true, Ordering::Release);
                timeout = Some(Duration::from_nanos(when.saturating_sub(now_ns())));
            }
        }
        // One idle M waits in the network poller instead of parking, so
        // sockets become ready without sysmon's 10 ms round (Go's
        // findrunnable blocking in netpoll).
        let netpoll = active && idle.netpoll_m.is_none() && self.netpoll.has_waiters();
        if netpoll {
            idle.netpoll_m = Some(pid);
        }
        idle.parked.push((pid, std::thread::current()));
        drop(idle);

        let status = &self.ps[pid].status;
        status.park();
        if netpoll {
            self.netpoll.poll(timeout);
            self.last_netpoll.store(now_ns(), Ordering::Relaxed);
        } else {
            match timeout {
                Some(d) => std::thread::park_timeout(d),
                None => std::thread::park(),
            }
        }

        while !status.unpark() {
            // Lent to a host thread (`super::callin`), which took this M
            // off `parked` and puts it back with the P.
            std::thread::park();
        }
        let mut idle = lock(&self.idle);
        idle.parked.retain(|(p, _)| *p != pid);
        idle.nidle -= 1;
        if idle.netpoll_m == Some(pid) {
            idle.netpoll_m = None;
        }
        if idle.timer_m == Some(pid) {
            idle.timer_m = None;
            self.timer_watched.store(false, Ordering::Release);
            // Leaving timer duty: pass it to an idle M of an active P.
            if self.timers.next_deadline().is_some() {
                let nprocs = self.nprocs();
                if let Some((_, t)) = idle.parked.iter().rev().find(|(p, _)| *p < nprocs) {
                    t.unpark();
                }
            }
        }
    }

    /// What `checkdead` looks at, as this M goes idle (counted in
    /// `idle`); the costly parts only when every M is idle.
    fn idle_snapshot(&self, idle: &Idle, next: Option<u64>) -> IdleSnapshot {
        let host = &self.host;
        let shutdown = host.shutdown_wait.load(Ordering::Acquire);
        // Every M counts, retired ones too: an M whose P was just retired
        // may still be finishing an actor's slice.
        let all_idle = idle.nidle >= self.nstarted() && (self.census.any_started() || shutdown);
        if !all_idle {
            return IdleSnapshot::default();
        }
        IdleSnapshot {
            all_idle,
            timer_can_wake: next.is_some() && self.timers.can_wake_anyone(),
            sockets_wait: self.netpoll.has_waiters(),
            host_holds: host.holds_any(),
            shutdown,
            program: host.program.load(Ordering::Acquire),
            host_tasks: host.has_tasks(),
            goroutines: self.census.goroutines(),
            queues_empty: self.all_queues_empty(),
            timers_firing: self.timers.firing(),
        }
    }

    /// Runs `actor`'s Gs until it has none runnable or its slice is over,
    /// then carries out how the run ended ([`SliceEnd`]). A host thread
    /// running a call inline (`super::callin`) passes the call's G as
    /// `host_gid` (else 0): the run also ends when that G has ended, and
    /// the actor's other work goes to an M.
    pub(crate) fn run_actor(&self, pid: usize, actor: &Arc<Actor>, host_gid: u64) {
        crate::actor::enter(actor.id);
        // This M's own slot (a spare serving the P has its own).
        let slot = crate::preempt::current_slot().expect("an M has a running slot");
        actor.release_slots();
        on_main_thread(actor, |_| actor.collect_if_asked());
        let mut clock = SliceClock::new(self.cpu_budget_ns, actor, slot);
        let end = self.run_gs(pid, actor, slot, &mut clock, host_gid);
        match end {
            SliceEnd::OverBudget => self.stop_over_budget(actor),
            SliceEnd::Reclaimed | SliceEnd::SliceUsed => {
                let overflow = self.ps[pid].push(actor.clone());
                lock(&self.global).extend(overflow);
            }
            SliceEnd::Retired => {
                lock(&self.global).push_back(actor.clone());
                self.wake_one();
            }
            SliceEnd::Stopping | SliceEnd::Idle | SliceEnd::Ended => {}
        }
        clock.finish(actor, slot);
        actor.publish_heap();
        crate::actor::enter(0);
        crate::trace::flush();
    }

    /// The loop of [`Shared::run_actor`]: one G's turn after another.
    ///
    /// The actor's queue lock is taken once per switch: recording what the
    /// last G did and picking the next happen in one critical section.
    fn run_gs(
        &self,
        pid: usize,
        actor: &Arc<Actor>,
        slot: &crate::preempt::Running,
        clock: &mut SliceClock,
        host_gid: u64,
    ) -> SliceEnd {
        let p = &self.ps[pid];
        let mut rounds: u32 = 0;
        // Over its CPU budget: every G picked is stopped (`after_turn`).
        let mut budget_stop = false;
        // A job ran last: a runnable G goes before the next one.
        let mut job_ran = false;
        let mut q = actor.lock();
        loop {
            if self.stopping() {
                return SliceEnd::Stopping;
            }
            if let Some(start) = q.start.take() {
                drop(q);
                if let Err(e) = self.run_start(actor, start) {
                    actor.end(Err(e));
                    return SliceEnd::Ended;
                }
                q = relock(actor);
                q.fresh = true;
                continue;
            }
            if !q.tasks.is_empty() {
                let tasks = std::mem::take(&mut q.tasks);
                drop(q);
                self.run_tasks(actor, tasks);
                q = relock(actor);
                continue;
            }
            // Another thread's work with the state held (a leak check):
            // one piece between two goroutines' turns, so that a long one
            // pauses them for one piece at a time.
            let g_first = std::mem::take(&mut job_ran) && q.has_runnable();
            if !q.jobs.is_empty() && !g_first {
                let job = q.jobs.remove(0);
                drop(q);
                self.run_job(actor, job);
                job_ran = true;
                q = relock(actor);
                if clock.slice_over() && q.has_work() {
                    // Its slice is used: the other actors get the M.
                    return SliceEnd::SliceUsed;
                }
                continue;
            }
            let Some(picked) = q.pick() else {
                if std::mem::take(&mut q.fresh) {
                    // Still this M's (`scheduled` stays set): what the
                    // finalizers ready runs next.
                    drop(q);
                    on_main_thread(actor, |_| actor.collect_opening());
                    q = relock(actor);
                    continue;
                }
                if budget_stop {
                    // The Gs left are parked: the actor ends now.
                    return SliceEnd::OverBudget;
                }
                q.scheduled = false;
                return SliceEnd::Idle;
            };
            drop(q);
            let (key, gid) = (picked.key, picked.id);
            // Only this M writes its P's tick: no read-modify-write needed.
            p.schedtick
                .store(p.schedtick.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
            actor.set_current(key, gid, picked.park);
            // Publish the running thread, then look whether sysmon sleeps:
            // sysmon does the opposite (flag, then slots), so one of the
            // two sees the other and a running G is always watched.
            slot.publish(picked.thread.0, gid);
            if self.sysmon_sleeping.load(Ordering::SeqCst) {
                self.wake_sysmon();
            }
            // After publishing: the host records an interrupt before it
            // looks at the slots (`Runtime::interrupt`), so one of the two
            // sees the other.
            let stop = if budget_stop {
                Some(crate::preempt::Stop::Budget)
            } else {
                self.host.interrupt_of(gid)
            };
            if let Some(why) = stop {
                slot.stop_current(why);
                if matches!(
                    picked.wake,
                    Some(crate::wake::Wake::Interrupted | crate::wake::Wake::Reclaimed)
                ) {
                    slot.stop_raised_once();
                }
                // SAFETY: this M owns the actor; the G is suspended.
                unsafe { crate::preempt::arm_stop(picked.thread.0) };
            }
            // At the top of a G every yield reaches this M.
            crate::preempt::set_forward(true);
            let traced = crate::trace::on().then(crate::trace::now);
            // SAFETY: this M owns the actor (its `scheduled` flag got it
            // here) and the picked G is suspended: it was Runnable. The
            // actor's main thread is idle while its M runs Gs. The slots in
            // its wake and select sends are this actor's: a channel carries
            // slots only while one actor uses it (`Chan::share`).
            let res = unsafe {
                ffi::resume(
                    picked.thread,
                    actor.main_thread,
                    picked.nstart,
                    picked.wake,
                    picked.sel_sends,
                )
            };
            if let Some(start) = traced {
                crate::trace::run(gid, actor.id, start, trace_end(&res));
            }
            let stopped = slot.pending_stop();
            slot.clear();
            actor.set_current(usize::MAX, 0, std::ptr::null());
            q = relock(actor);
            if stopped == Some(crate::preempt::Stop::Budget)
                && matches!(res, Resumed::Panicked(..) | Resumed::Exited)
            {
                // Stopped by sysmon inside its slice: the G's end (its
                // error, or a host task's, which the task left to us) is
                // the budget's, and the actor ends with it.
                self.remove_g(actor, &mut q, key, gid);
                return SliceEnd::OverBudget;
            }
            let preempted = matches!(res, Resumed::Preempted);
            if let Some(then) = self.after_resume(actor, &mut q, key, gid, res) {
                drop(q);
                if let Some(end) = self.unlocked(actor, gid, then) {
                    return end;
                }
                q = relock(actor);
            }
            if gid == host_gid && !q.is_alive(key, gid) {
                // The host's call has ended: its thread goes back to the
                // host, an M takes what else the actor has to do. (A call
                // that parks lets the host run the actor's other Gs, which
                // may wake it, until the actor is idle.)
                if q.has_work() {
                    return SliceEnd::SliceUsed;
                }
                q.scheduled = false;
                return SliceEnd::Idle;
            }

            // The CPU budget: looked at when sysmon preempts a goroutine
            // that runs long, and every 16 switches; so is the slice.
            let look = preempted || rounds.is_multiple_of(16);
            rounds = rounds.wrapping_add(1);
            let turn = Turn {
                over_budget: look && clock.over_budget(actor, slot),
                runnable: q.has_runnable(),
                reclaimed: p.status.get() == PStatus::Reclaim,
                retired: pid >= self.nprocs(),
                slice_over: look && clock.slice_over(),
            };
            budget_stop |= turn.over_budget;
            if let Some(end) = after_turn(&turn) {
                return end;
            }
            if let Some(when) = self.timers.next_deadline() {
                let now = now_ns();
                if now >= when {
                    // Firing readies Gs, which takes the queue lock.
                    drop(q);
                    self.timers.run_due(now);
                    q = relock(actor);
                }
            }
        }
    }

    /// Runs a job of `actor` (its state held, no G running), timed for
    /// `runtime.stats()`. Out of line: jobs are rare, the loop is hot.
    #[cold]
    #[inline(never)]
    fn run_job(&self, actor: &Arc<Actor>, job: crate::actor::Job) {
        let t = std::time::Instant::now();
        on_main_thread(actor, |_| job(actor, actor.main_thread));
        self.census.stats.note_job(t.elapsed());
    }

    /// Records what G `key` did in its turn (`res`), under the actor's
    /// queue lock; `Some` for what is left to do without it.
    fn after_resume(
        &self,
        actor: &Actor,
        q: &mut ActorQueue,
        key: GKey,
        gid: u64,
        res: Resumed,
    ) -> Option<Unlocked> {
        match res {
            Resumed::Parked(reason) => {
                let g = &mut q.gs[key];
                if let Some(why) = g.interrupted {
                    if g.wake.is_none() && q.words.get(key).claim_open() {
                        // Interrupted while it ran: the park it made is
                        // withdrawn at once (`Actor::interrupt`).
                        g.wake = Some(crate::wake::Wake::stopped(why));
                    }
                }
                if g.wake.is_some() {
                    g.status = GStatus::Runnable;
                    q.push_back(key);
                } else {
                    g.status = GStatus::Waiting;
                    g.reason = reason;
                    g.since = crate::clock::coarse_secs();
                }
                None
            }
            Resumed::Gosched => {
                q.gs[key].status = GStatus::Runnable;
                q.push_back(key);
                None
            }
            Resumed::Preempted => {
                // To the back of its actor's queue, as Go does.
                self.census
                    .stats
                    .preemptions
                    .fetch_add(1, Ordering::Relaxed);
                q.gs[key].status = GStatus::Runnable;
                q.push_back(key);
                None
            }
            Resumed::Exited => {
                self.remove_g(actor, q, key, gid);
                // A task's results are in already; this ends one that
                // called `os.exit`.
                let done = crate::host::TaskEnd::Returned(mlua::MultiValue::new());
                self.host.end_task(gid, done);
                actor.is_main_g(gid).then_some(Unlocked::MainReturned)
            }
            Resumed::Panicked(message, traceback) => {
                self.remove_g(actor, q, key, gid);
                let route = route_panic(
                    self.host.is_task(gid),
                    actor.id == 1,
                    self.config.on_panic.is_some(),
                );
                Some(Unlocked::Panic(route, message, traceback))
            }
        }
    }

    /// Carries out what a G's turn left to do without the queue lock;
    /// `Some` when that ends the run.
    fn unlocked(&self, actor: &Actor, gid: u64, then: Unlocked) -> Option<SliceEnd> {
        match then {
            Unlocked::MainReturned => {
                if actor.id == 1 {
                    self.finish(Outcome::Exit(0));
                } else {
                    // `scheduled` stays set: an ended actor is never
                    // queued again, and this M closes it.
                    actor.end(Ok(()));
                }
                Some(SliceEnd::Ended)
            }
            Unlocked::Panic(route, message, traceback) => {
                self.route_panic(actor, gid, route, message, traceback)
            }
        }
    }

    /// Carries out the route of a goroutine's uncaught error; `Some` when
    /// that ends the run.
    fn route_panic(
        &self,
        actor: &Actor,
        gid: u64,
        route: PanicRoute,
        message: String,
        traceback: String,
    ) -> Option<SliceEnd> {
        match route {
            PanicRoute::Task => {
                let end = crate::host::TaskEnd::Raised { message, traceback };
                self.host.end_task(gid, end);
                None
            }
            PanicRoute::Handler => {
                let handler = self
                    .config
                    .on_panic
                    .as_ref()
                    .expect("routed to the handler");
                handler(&panic_report(
                    gid,
                    &message,
                    &traceback,
                    self.config.face.hidden_chunk(),
                ));
                None
            }
            PanicRoute::Program => {
                self.finish(Outcome::Panic(panic_report(
                    gid,
                    &message,
                    &traceback,
                    self.config.face.hidden_chunk(),
                )));
                Some(SliceEnd::Ended)
            }
            PanicRoute::Actor => {
                // An actor's uncaught error ends that actor only.
                let report =
                    panic_report(gid, &message, &traceback, self.config.face.hidden_chunk());
                let err = report.strip_prefix("panic: ").unwrap_or(&report);
                actor.end(Err(err.trim_end().to_string()));
                Some(SliceEnd::Ended)
            }
        }
    }

    /// Removes a G that has ended from its actor.
    fn remove_g(&self, actor: &Actor, q: &mut ActorQueue, key: GKey, gid: u64) {
        let g = q.remove(key);
        // SAFETY: this M owns the actor; the G has ended, so its thread is
        // not running, and its reference is released exactly once (the G
        // is gone from the table).
        unsafe { ffi::unref_thread(actor.main_thread, g.thread_ref) };
        self.census.goroutines_ended(1);
        self.host.forget_interrupt(gid);
        actor.account().release(crate::mem::G_BYTES);
    }

    /// Stops an actor that has used up the CPU budget: the main actor ends
    /// the program with a panic, another actor ends with that error.
    fn stop_over_budget(&self, actor: &Arc<Actor>) {
        let budget = Duration::from_nanos(self.cpu_budget_ns);
        let msg = format!("cpu budget of {budget:?} exceeded");
        if actor.id == 1 {
            self.finish(Outcome::Panic(format!("panic: {msg}\n")));
        } else {
            actor.end(Err(msg));
        }
    }

    /// Opens a new actor's state and starts its first G (`Actor::post_start`).
    fn run_start(&self, actor: &Arc<Actor>, start: crate::actor::StartFn) -> Result<(), String> {
        on_main_thread(actor, |_| start(actor))
    }

    fn run_tasks(&self, actor: &Arc<Actor>, tasks: Vec<u64>) {
        if actor.has_ended() {
            return;
        }
        let Some(f) = actor.task_fn() else { return };
        let failed = on_main_thread(actor, |_| {
            tasks.into_iter().find_map(|id| f.call::<()>(id).err())
        });
        if let Some(e) = failed {
            self.finish(Outcome::Panic(panic_report(
                0,
                &e.to_string(),
                "",
                self.config.face.hidden_chunk(),
            )));
        }
    }
}
