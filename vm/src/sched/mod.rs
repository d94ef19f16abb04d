//! The scheduler: Ps, Ms, the global run queue, idle Ms and the outcome.
//!
//! Design (DESIGN.md section 2). Actors, not Gs, sit on the P run queues:
//! a G can only run on the M that holds its actor's Lua state, so the
//! actor is what moves between Ps. Inside an actor, Gs are scheduled by
//! [`crate::actor`]'s own queue with a `runnext` slot.
//!
//! Each P has one M (OS thread) started when the P first becomes active;
//! an M whose P is retired by `gomaxprocs` parks until it is active again.
//!
//! Finding work (Go's `findrunnable`, in this order):
//! 1. fire due timers;
//! 2. every 61st tick, the global queue first (fairness);
//! 3. the local queue, then the global queue;
//! 4. steal half of another P's queue;
//! 5. go idle: park, with a timeout at the next timer deadline for exactly
//!    one idle M (the timer M). Before parking, the last M to go idle
//!    checks for deadlock.
//!
//! Locks: every mutex of the scheduler and of the layers below is a
//! [`crate::lockrank::Lock`] with a rank; a thread takes locks only in
//! the order of `lockrank::Rank` (the table there, Go's `lockrank.go`),
//! checked in debug builds. The P states and their transitions are
//! [`p::PStatus`]'s table; the decisions (checkdead, the end of a slice,
//! where a panic goes) are pure functions in `policy`.
//!
//! An M that finds no work spins for it a moment before it parks (one at
//! a time, Go's `spinning`: `m::SPIN`). A host thread that calls into the
//! main actor borrows an idle P and runs the call itself ([`callin`], Go's
//! cgocallback).

pub mod callin;
pub mod dump;
pub mod leaks;
pub mod m;
mod monitor;
pub mod p;
mod policy;
pub mod syscall;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, OnceLock, Weak};

use crossbeam_channel::Sender;

use mlua::{Lua, MultiValue};

use crate::actor::{Actor, Runner};
use crate::census::Census;
use crate::host::Outcome;
use crate::lockrank::{Guard, Lock, Rank};
use crate::timer::{TimerAction, TimerId, Timers};
use p::P;

/// The most Ps a runtime can have.
pub const MAX_PROCS: usize = 256;

/// Every 61st schedule tick a P takes from the global queue first, so work
/// there cannot starve behind a busy local queue (Go's `schedtick%61`; a
/// prime, so it does not beat with other periodic work).
pub const GLOBAL_QUEUE_EVERY: u64 = 61;

/// How long an actor may run while other actors wait: the slice sysmon
/// gives a G before it preempts it (Go's `forcePreemptNS`).
pub const ACTOR_SLICE_NS: u64 = lugo_sysmon::policy::FORCE_PREEMPT_NS;

/// Stack size of an M's thread (Ms and spare Ms): Lua's C stack for deep
/// recursion (`LUAI_MAXCCALLS` C levels) and C modules that use a lot.
const M_STACK_BYTES: usize = 16 << 20;

/// A Rust function that the host gives every actor, called with the
/// calling actor's state and the Lua arguments.
pub type HostFn = Arc<dyn Fn(&Lua, MultiValue) -> mlua::Result<MultiValue> + Send + Sync>;

/// A host function and the global name it has in every actor.
#[derive(Clone)]
pub struct HostFunction {
    /// Its global name.
    pub name: String,
    /// How it is called.
    pub kind: HostKind,
    /// The function.
    pub f: HostFn,
}

/// How a host function is called.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKind {
    /// On the goroutine's M, while its actor waits.
    Plain,
    /// With the P handed off, as `io.read` is (it may wait long).
    Blocking,
    /// It starts the call and returns a channel (`crate::endpoint::Endpoint`)
    /// its answer comes on, `{ true, results..., n = }` or
    /// `{ false, message }`: the goroutine parks until a host thread
    /// answers.
    Answered,
}

impl std::fmt::Debug for HostFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} host function {}", self.kind, self.name)
    }
}

/// Called with the report of an uncaught error in a goroutine of the main
/// actor that nobody waits for (see [`Config::on_panic`]).
pub type PanicHandler = Arc<dyn Fn(&str) + Send + Sync>;

/// How a runtime is set up.
#[derive(Clone)]
pub struct Config {
    /// Number of Ps (`GOMAXPROCS`).
    pub procs: usize,
    /// Memory limit in bytes for each actor's Lua heap (0: none);
    /// `actor.spawn{ f, memory = bytes }` sets one actor's own.
    pub actor_memory: usize,
    /// Every actor is a sandbox for untrusted code (see `lugo::Builder::sandbox`).
    pub sandbox: bool,
    /// Time each actor may run on an M before it is stopped (None: no
    /// limit); checked when sysmon preempts one of its goroutines.
    pub cpu_budget: Option<std::time::Duration>,
    /// Functions the host gives every actor, as globals.
    pub host_functions: Vec<HostFunction>,
    /// What an uncaught error in a goroutine of the main actor does when
    /// the host does not wait for that goroutine: with a handler, the
    /// handler gets the `panic: ...` report and the runtime goes on;
    /// without, the runtime ends with [`Outcome::Panic`] (Go's rule).
    pub on_panic: Option<PanicHandler>,
    /// sysmon's debug settings (`LUGO_DEBUG`: schedtrace).
    pub monitor: lugo_sysmon::Debug,
    /// The Lua face the actors' states are opened with (lugo's stdlib
    /// gives `lugo_stdlib::FACE`): how a copied value is rebuilt, which
    /// chunk tracebacks hide.
    pub face: &'static crate::ffi::Face,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("procs", &self.procs)
            .field("actor_memory", &self.actor_memory)
            .field("sandbox", &self.sandbox)
            .field("cpu_budget", &self.cpu_budget)
            .field("host_functions", &self.host_functions)
            .field("on_panic", &self.on_panic.is_some())
            .field("monitor", &self.monitor)
            .field("face", &self.face.hidden_source)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            procs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            actor_memory: 0,
            sandbox: false,
            cpu_budget: None,
            host_functions: Vec::new(),
            on_panic: None,
            monitor: lugo_sysmon::Debug::default(),
            face: &crate::ffi::Face::NONE,
        }
    }
}

#[derive(Default)]
pub(crate) struct Idle {
    /// Parked Ms: their P id and thread handle.
    parked: Vec<(usize, std::thread::Thread)>,
    /// Ms that are idle (parked or about to park), retired ones included.
    nidle: usize,
    /// The idle M that sleeps until the next timer deadline.
    timer_m: Option<usize>,
    /// The idle M blocked in the network poller (woken by `notify`).
    netpoll_m: Option<usize>,
}

/// State shared by every M, P and actor of one runtime (behind
/// [`Runtime`], the one handle of it).
pub(crate) struct Shared {
    pub(crate) ps: Vec<P>,
    nprocs: AtomicUsize,
    /// Ms started so far; M `i` serves P `i`. Also readable without the
    /// lock (`nstarted`), for the deadlock check.
    started: Lock<usize>,
    nstarted: AtomicUsize,
    /// M threads (spares included) that have not exited yet.
    live_ms: AtomicUsize,
    global: Lock<VecDeque<Arc<Actor>>>,
    idle: Lock<Idle>,
    /// Ms looking for work before they park (at most one: `m::SPIN`): work
    /// queued meanwhile needs no wake-up, the spinning M takes it.
    pub(crate) spinning: AtomicUsize,
    /// Host threads waiting for a spinning M to park and free its P for
    /// a call inline (`callin`): the spinning M stops at once.
    host_wants_p: AtomicUsize,
    /// The runtime's timers.
    pub(crate) timers: Arc<Timers>,
    next_actor_id: AtomicU64,
    /// Actors whose state is open, by id (an actor leaves when its state
    /// is closed: spawning without end holds nothing here).
    actors: Lock<rustc_hash::FxHashMap<u64, Weak<Actor>>>,
    outcome: Lock<Option<Outcome>>,
    outcome_cv: Condvar,
    stopping: AtomicBool,
    /// Goroutine ids and numbers, counters, errors nobody saw.
    pub(crate) census: Census,
    /// How the runtime was set up (its `procs` is the start value; the
    /// live one is `nprocs`).
    config: Config,
    /// `config.cpu_budget` in ns (0: none), read at every actor slice.
    pub(crate) cpu_budget_ns: u64,
    /// sysmon's mailbox, once it runs.
    monitor: OnceLock<Sender<()>>,
    /// The leak checker's mailbox (`LUGO_DEBUG=leakcheck`), made at the
    /// first check: a request says whether to reclaim.
    leak_checker: OnceLock<crossbeam_channel::Sender<bool>>,
    /// sysmon sleeps until woken (every P was idle).
    sysmon_sleeping: AtomicBool,
    /// An idle M sleeps until the next timer (mirror of `Idle::timer_m`).
    timer_watched: AtomicBool,
    /// Runtime clock of the last network poll.
    pub(crate) last_netpoll: AtomicU64,
    /// Spare Ms waiting for a P to serve.
    spares: Lock<Vec<Arc<syscall::Spare>>>,
    /// The network poller.
    pub(crate) netpoll: crate::netpoll::Netpoll,
    /// What the host waits on and holds.
    pub(crate) host: crate::host::Host,
    /// Whether the states are to be closed (finalizers run) when the
    /// program ends: yes, as `lua.c` closes its state, unless `os.exit`
    /// said otherwise.
    close_at_exit: AtomicBool,
}

fn lock<T>(m: &Lock<T>) -> Guard<'_, T> {
    m.lock()
}

impl Shared {
    pub(crate) fn nstarted(&self) -> usize {
        self.nstarted.load(Ordering::Acquire)
    }

    pub(crate) fn nprocs(&self) -> usize {
        self.nprocs.load(Ordering::Acquire)
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Starts the Ms of Ps `0..n` that are not running yet.
    fn ensure_ms(self: &Arc<Self>, n: usize) {
        let mut started = lock(&self.started);
        while *started < n {
            let pid = *started;
            // Counted before it runs: a new M that goes idle at once must
            // not see itself as the last of the Ms (checkdead).
            *started += 1;
            self.nstarted.store(*started, Ordering::Release);
            self.live_ms.fetch_add(1, Ordering::AcqRel);
            let shared = self.clone();
            std::thread::Builder::new()
                .name(format!("lugo-m{pid}"))
                // As much C stack as a main thread has: deep Lua recursion
                // through C functions (nested coroutines, metamethods) runs
                // on it until Lua's own C-call limit stops it.
                .stack_size(M_STACK_BYTES)
                .spawn(move || m::m_main(shared, pid))
                .expect("cannot start an M thread");
        }
    }

    /// Puts a newly runnable actor on a run queue and makes sure an M will
    /// run it. The caller has set the actor's `scheduled` flag.
    pub(crate) fn schedule_actor(&self, a: Arc<Actor>) {
        match m::current_p().filter(|&p| p < self.nprocs()) {
            Some(pid) => {
                let overflow = self.ps[pid].push(a);
                if !overflow.is_empty() {
                    lock(&self.global).extend(overflow);
                }
                // This M is busy with another actor: let an idle M steal
                // (a spinning one will).
                if crate::actor::running() != 0 && !self.an_m_spins() {
                    self.wake_one();
                }
            }
            None => {
                lock(&self.global).push_back(a);
                if !self.an_m_spins() {
                    self.wake_one();
                }
            }
        }
    }

    /// Whether an M is spinning for work: it will find what was just
    /// queued. Read after the queueing, against the M's stop of spinning
    /// before it looks at the global queue once more (`park_idle`): one of
    /// the two sees the other (both sequentially consistent).
    fn an_m_spins(&self) -> bool {
        self.spinning.load(Ordering::SeqCst) > 0
    }

    /// Unparks one idle M of an active P, if any (an M of a retired P
    /// takes no work).
    pub(crate) fn wake_one(&self) {
        let nprocs = self.nprocs();
        let mut idle = lock(&self.idle);
        if let Some(i) = idle.parked.iter().rposition(|(p, _)| *p < nprocs) {
            let (p, t) = idle.parked.remove(i);
            t.unpark();
            if idle.netpoll_m == Some(p) {
                self.netpoll.notify();
            }
        }
    }

    /// Wakes sysmon if it is asleep (it drops a wake-up that finds its
    /// mailbox full: one pending wake-up is enough).
    pub(crate) fn wake_sysmon(&self) {
        // Its deep sleep left the coarse clock behind: fresh for the parks
        // that come before its first tick (`clock::coarse_secs`).
        crate::clock::now_ns();
        if let Some(tx) = self.monitor.get() {
            let _ = tx.try_send(());
        }
    }

    fn wake_timer_m(&self) {
        if !self.timer_watched.load(Ordering::Acquire) {
            // Nobody sleeps until the old earliest timer: sysmon might.
            self.wake_sysmon();
        }
        let idle = lock(&self.idle);
        let nprocs = self.nprocs();
        let target = idle
            .timer_m
            .and_then(|t| idle.parked.iter().find(|(p, _)| *p == t))
            .or_else(|| idle.parked.iter().rev().find(|(p, _)| *p < nprocs));
        if let Some((p, t)) = target {
            t.unpark();
            if idle.netpoll_m == Some(*p) {
                self.netpoll.notify();
            }
        }
    }

    /// Records how the program ends (the first outcome wins) and stops the Ms.
    pub(crate) fn finish(&self, outcome: Outcome) {
        // The events of the thread that ends the program go where the
        // trace's writer, woken by the outcome, reads them.
        crate::trace::flush();
        let mut o = lock(&self.outcome);
        if o.is_none() {
            *o = Some(outcome);
        }
        let end = o.clone().expect("an outcome was just set");
        self.stopping.store(true, Ordering::Release);
        self.outcome_cv.notify_all();
        drop(o);
        // Host invariant 3: whoever the host waits for will not end now.
        self.host
            .end_all(|| crate::host::TaskEnd::Stopped(end.clone()));
        self.host.stop_parked();
        self.wake_sysmon();
        for (_, t) in lock(&self.idle).parked.drain(..) {
            t.unpark();
        }
        for spare in lock(&self.spares).iter() {
            spare.unpark();
        }
        self.netpoll.notify();
    }

    pub(crate) fn pop_global(&self) -> Option<Arc<Actor>> {
        lock(&self.global).pop_front()
    }

    fn global_is_empty(&self) -> bool {
        lock(&self.global).is_empty()
    }

    /// Whether every run queue is empty: the global one and every P's,
    /// retired Ps included (a retired P's M may not have handed its queue
    /// over yet).
    pub(crate) fn all_queues_empty(&self) -> bool {
        self.global_is_empty() && (0..self.nstarted()).all(|i| self.ps[i].len() == 0)
    }

    fn live_actors(&self) -> Vec<Arc<Actor>> {
        let mut v: Vec<Arc<Actor>> = lock(&self.actors)
            .values()
            .filter_map(Weak::upgrade)
            .collect();
        v.sort_by_key(|a| a.id);
        v
    }

    /// Forgets an actor whose state is closed.
    pub(crate) fn forget_actor(&self, id: u64) {
        lock(&self.actors).remove(&id);
    }

    /// Every goroutine of every actor, as dumps print them, then the
    /// errors of actors nobody waited for. With `wait`, an actor whose
    /// state an M still holds after that long (a goroutine in a blocking
    /// call, or in a C function that runs on) is listed without stacks,
    /// as far as its queue tells (Go dumps from any state, too); without,
    /// every state is free (no M runs: checkdead).
    fn dump_all(&self, wait: Option<std::time::Duration>) -> String {
        let mut out = String::new();
        for a in self.live_actors().into_iter().filter(|a| !a.has_ended()) {
            out.push('\n');
            let dumped = match wait {
                _ if a.blocking_gid() != 0 => None,
                None => Some(a.with_state(|| dump::dump_actor(&a, None))),
                Some(w) => with_state_within(&a, w, |b| dump::dump_actor(b, None)),
            };
            match dumped {
                Some(Ok(s)) => out.push_str(&s),
                Some(Err(e)) => out.push_str(&format!("(cannot dump actor {}: {e})\n", a.id)),
                None => out.push_str(&dump::dump_actor_unlocked(&a)),
            }
        }
        out.push_str(&self.census.unobserved.report());
        out
    }

    /// Go's `checkdead`, called by the last M to go idle: nothing runs, is
    /// runnable or is waiting for a timer. Builds the report.
    fn outcome(&self) -> Option<Outcome> {
        lock(&self.outcome).clone()
    }

    fn deadlock_report(&self) -> String {
        let mut out = String::new();
        if self.census.goroutines() == 0 {
            out.push_str("fatal error: no goroutines (main called runtime.goexit) - deadlock!\n");
            return out;
        }
        out.push_str("fatal error: all goroutines are asleep - deadlock!\n");
        out.push_str(&self.dump_all(None));
        out
    }
}

/// An actor holds a handle of the runtime that runs it, as its runner.
impl Runner for Runtime {
    fn schedule(&self, actor: Arc<Actor>) {
        self.shared.schedule_actor(actor);
    }

    fn ended(&self, actor: &Actor) {
        self.shared.timers.purge(actor);
    }

    fn closed(&self, id: u64) {
        self.shared.forget_actor(id);
    }

    fn census(&self) -> &Census {
        &self.shared.census
    }
}

impl Actor {
    /// The runtime that runs this actor.
    pub fn runtime(&self) -> &Runtime {
        let runner: &dyn std::any::Any = self.runner();
        runner
            .downcast_ref()
            .expect("an actor's runner is a runtime")
    }
}

/// `f` of `actor` under its state, if the state is free within `wait`: a
/// helper thread takes it (as a host would) and is left behind while it
/// stays held (a goroutine in a blocking call; the dumps that use this
/// run rarely, or as the process exits).
fn with_state_within<R: Send + 'static>(
    actor: &Arc<Actor>,
    wait: std::time::Duration,
    f: impl FnOnce(&Actor) -> R + Send + 'static,
) -> Option<R> {
    let (tx, rx) = std::sync::mpsc::channel();
    let a = actor.clone();
    let _ = std::thread::Builder::new()
        .name("lugo-dump".into())
        .spawn(move || {
            let _ = tx.send(a.with_state(|| f(&a)));
        });
    rx.recv_timeout(wait).ok()
}

/// Closes the states of `actors` on this thread (the runtime's Ms have
/// exited). Their finalizers run, watched: one still running at
/// `deadline` is stopped (it raises, and Lua goes on with the next), so a
/// script cannot keep its host from dropping a runtime.
fn close_states(actors: Vec<Arc<Actor>>, deadline: std::time::Instant, face: &crate::ffi::Face) {
    let slot = crate::preempt::Running::default();
    slot.bind(face.hidden_source.as_bytes());
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                std::thread::sleep(std::time::Duration::from_millis(5));
                if std::time::Instant::now() >= deadline {
                    slot.request_stop(0, crate::preempt::Stop::Shutdown);
                }
            }
        });
        for a in actors {
            slot.publish(a.main_thread.0, m::STATE_GID);
            a.close_for_shutdown();
            slot.clear();
        }
        done.store(true, Ordering::Release);
    });
    slot.unbind();
}

/// A lugo runtime: its Ps, Ms, timers and actors. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
}

impl Runtime {
    /// Starts a runtime with `config.procs` Ps (at least 1, at most
    /// [`MAX_PROCS`]).
    pub fn new(config: Config) -> Runtime {
        let procs = config.procs.clamp(1, MAX_PROCS);
        let timers = Arc::new(Timers::default());
        let netpoll =
            crate::netpoll::Netpoll::new(timers.clone()).expect("cannot create the network poller");
        let shared = Arc::new(Shared {
            ps: (0..MAX_PROCS).map(P::new).collect(),
            nprocs: AtomicUsize::new(procs),
            started: Lock::new(Rank::Started, 0),
            nstarted: AtomicUsize::new(0),
            live_ms: AtomicUsize::new(0),
            global: Lock::new(Rank::Global, VecDeque::new()),
            idle: Lock::new(Rank::Idle, Idle::default()),
            timers,
            next_actor_id: AtomicU64::new(1),
            actors: Lock::new(Rank::Actors, Default::default()),
            outcome: Lock::new(Rank::Outcome, None),
            outcome_cv: Condvar::new(),
            stopping: AtomicBool::new(false),
            census: Census::default(),
            cpu_budget_ns: config
                .cpu_budget
                .map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64),
            config,
            monitor: OnceLock::new(),
            leak_checker: OnceLock::new(),
            sysmon_sleeping: AtomicBool::new(false),
            timer_watched: AtomicBool::new(false),
            spinning: AtomicUsize::new(0),
            host_wants_p: AtomicUsize::new(0),
            last_netpoll: AtomicU64::new(0),
            spares: Lock::new(Rank::Spares, Vec::new()),
            netpoll,
            host: crate::host::Host::default(),
            close_at_exit: AtomicBool::new(true),
        });
        shared.ensure_ms(procs);
        monitor::start(&shared, shared.config.monitor);
        Runtime { shared }
    }

    // ---- services of the Lua face (lugo-stdlib) ----

    /// Adds a timer that fires at `when` (runtime clock, ns), then every
    /// `period` ns if `period > 0`; `charge` is what its record costs its
    /// actor. Returns its id.
    pub fn add_timer(
        &self,
        when: u64,
        period: u64,
        action: TimerAction,
        charge: crate::mem::Charge,
    ) -> TimerId {
        let (id, earliest) = self.shared.timers.add(when, period, action, charge);
        if earliest {
            // The M that sleeps until the earliest timer must look again.
            self.shared.wake_timer_m();
        }
        id
    }

    /// Moves pending timer `id` to `when`; false if it is not pending (it
    /// fired or was stopped: add a new one).
    pub fn reset_timer(&self, id: TimerId, when: u64) -> bool {
        let (pending, earliest) = self.shared.timers.reset(id, when);
        if earliest {
            self.shared.wake_timer_m();
        }
        pending
    }

    /// Stops timer `id`; true if it was pending.
    pub fn stop_timer(&self, id: TimerId) -> bool {
        self.shared.timers.stop(id)
    }

    /// The network poller.
    pub fn netpoll(&self) -> &crate::netpoll::Netpoll {
        &self.shared.netpoll
    }

    /// The Lua face the runtime was built with (`Config::face`).
    pub fn face(&self) -> &'static crate::ffi::Face {
        self.shared.config.face
    }

    /// The runtime's counters (`runtime.stats()`).
    pub fn stats(&self) -> &crate::census::Stats {
        &self.shared.census.stats
    }

    /// Makes an actor with a new Lua state (`mem::new_state`: the full
    /// standard library); the first actor made is the main actor.
    /// Its memory limit is `limit` bytes (0: none of its own; the main
    /// actor's default is the runtime's `actor_memory`); an actor spawned
    /// by `parent` stays within the parent's limit too (`crate::mem`).
    pub fn new_actor(&self, parent: Option<&Actor>, limit: usize) -> mlua::Result<Arc<Actor>> {
        let id = self.shared.next_actor_id.fetch_add(1, Ordering::Relaxed);
        let account = match parent {
            Some(p) => crate::mem::Account::child(p.account(), limit),
            None => crate::mem::Account::root(limit),
        };
        let a = Actor::new(Box::new(self.clone()), id, account, self.shared.config.face)?;
        a.gc.limit.store(limit, Ordering::Relaxed);
        lock(&self.shared.actors).insert(id, Arc::downgrade(&a));
        Ok(a)
    }

    /// The default memory limit of an actor in bytes (0: none).
    pub fn actor_memory(&self) -> usize {
        self.shared.config.actor_memory
    }

    /// The functions the host gives every actor.
    pub fn host_functions(&self) -> &[HostFunction] {
        &self.shared.config.host_functions
    }

    /// Whether actors have a CPU budget (`Config::cpu_budget`).
    pub fn has_cpu_budget(&self) -> bool {
        self.shared.cpu_budget_ns > 0
    }

    /// Whether every actor is a sandbox for untrusted code.
    pub fn is_sandbox(&self) -> bool {
        self.shared.config.sandbox
    }

    /// Blocks until the program ends and returns how.
    pub fn wait(&self) -> Outcome {
        let mut o = lock(&self.shared.outcome);
        loop {
            if let Some(o) = o.as_ref() {
                return o.clone();
            }
            o = o.wait(&self.shared.outcome_cv);
        }
    }

    /// Ends the program with `outcome` (the first outcome wins).
    pub fn finish(&self, outcome: Outcome) {
        self.shared.finish(outcome);
    }

    /// Stops the runtime (if it runs) and frees what it holds: once every
    /// M thread has exited (at most `wait`), the run queues and timers are
    /// emptied and every actor's Lua state is closed, which breaks the
    /// reference cycles between actors, their channels and the runtime.
    /// Returns false, freeing nothing, if an M is still busy after `wait`
    /// (a goroutine stuck in a blocking C call): leaking is safe, closing
    /// a state an M runs is not.
    pub fn close(&self, wait: std::time::Duration) -> bool {
        let s = &self.shared;
        s.finish(Outcome::Exit(0));
        let deadline = std::time::Instant::now() + wait;
        while s.live_ms.load(Ordering::Acquire) > 0 {
            if std::time::Instant::now() >= deadline {
                return false;
            }
            // A goroutine that never parks stops at its next instruction
            // (sysmon, which would preempt it, has stopped).
            s.stop_running();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        // Dropped after the lock: an actor never run (its state not yet
        // opened, `Actor::post_start`) may go with its queue entry, and
        // forgetting it takes the actors lock.
        let global = std::mem::take(&mut *lock(&s.global));
        drop(global);
        for p in &s.ps[..s.nstarted()] {
            drop(p.drain());
        }
        s.timers.clear();
        close_states(s.live_actors(), deadline, s.config.face);
        true
    }

    /// Records whether the program's states are to be closed at its end
    /// (`os.exit(code, close)`; the first word wins, as the first outcome).
    pub fn set_close_at_exit(&self, close: bool) {
        if self.shared.outcome().is_none() {
            self.shared.close_at_exit.store(close, Ordering::Release);
        }
    }

    /// Whether the program's states are to be closed at its end: as
    /// `lua.c` does, unless `os.exit` said otherwise, and never after a
    /// deadlock (Go's fatal error exits at once).
    pub fn close_at_exit(&self) -> bool {
        self.shared.close_at_exit.load(Ordering::Acquire)
            && !matches!(self.outcome(), Some(Outcome::Deadlock(_)))
    }

    /// How the runtime ended, once it has.
    pub fn outcome(&self) -> Option<Outcome> {
        lock(&self.shared.outcome).clone()
    }

    // ---- the host's side (see [`crate::host`]) ----

    /// Makes goroutine `gid` of `actor` the program's main goroutine: when
    /// it returns, the runtime ends (`Runtime::run`). Call it under the
    /// actor's state lock, before the goroutine can run.
    pub fn set_program_main(&self, actor: &Actor, gid: u64) {
        self.shared.host.program.store(true, Ordering::Release);
        actor.set_main_g(gid);
    }

    /// Records that the host waits for goroutine `gid` (under its actor's
    /// state lock, before it can run: host invariant 1).
    pub fn add_task(&self, gid: u64, task: Arc<crate::host::HostTask>) {
        self.shared.host.add_task(gid, task);
        // `finish` sets `stopping` before it ends the tasks: one added after
        // that is seen here and ended, so nobody waits for a stopped runtime.
        if let Some(o) = self.stopping().then(|| self.outcome()).flatten() {
            self.end_task(gid, crate::host::TaskEnd::Stopped(o));
        }
    }

    /// Ends the host's task of goroutine `gid` (its results are in).
    pub fn end_task(&self, gid: u64, end: crate::host::TaskEnd) -> bool {
        self.shared.host.end_task(gid, end)
    }

    /// Asks goroutine `gid` to stop: a running goroutine raises
    /// `interrupted` at once (every running M is preempted), a parked one
    /// at once too: its wait is withdrawn, losing nothing (a sender that is
    /// interrupted did not send), and it raises `interrupted` at its park.
    /// Ends with the goroutine. False if no actor has goroutine `gid`.
    pub fn interrupt(&self, gid: u64) -> bool {
        self.shared
            .host
            .interrupt(gid, crate::preempt::Stop::Interrupt);
        // After recording it: an M that starts running `gid` now checks
        // the record after publishing the G (see `run_actor`).
        std::sync::atomic::fence(Ordering::SeqCst);
        for p in 0..self.shared.watched_procs() {
            self.shared.ps[p]
                .slot()
                .request_stop(gid, crate::preempt::Stop::Interrupt);
        }
        let found = self.shared.live_actors().iter().any(|a| a.interrupt(gid));
        if !found {
            // Nothing to stop (it has ended, or never was): not remembered.
            self.shared.host.forget_interrupt(gid);
        }
        found
    }

    /// Counts a channel endpoint held by the host: while any is held, no
    /// deadlock is reported (the host may still send or receive).
    pub fn hold_endpoint(&self) {
        self.shared.host.hold();
    }

    /// Lets go of a held endpoint; after the last, the idle Ms look for a
    /// deadlock again.
    pub fn release_endpoint(&self) {
        if self.shared.host.release() {
            self.shared.wake_one();
        }
    }

    /// Records a host thread about to block on a channel (it is woken if
    /// the runtime stops); false if the runtime has stopped already.
    pub fn park_host(&self, p: &Arc<crate::chan::HostPark>) -> bool {
        self.shared.host.add_parked(p);
        // After registering: a `finish` that ran before it is seen here.
        !self.stopping()
    }

    /// Blocks the calling host thread until `actor` has ended and its
    /// state is closed (its memory given back), as `actor:wait` does but
    /// without a goroutine: `Returned` (no values) if its first goroutine
    /// returned, `Raised` with its error (no traceback) if it failed,
    /// `Deadlock` if every goroutine is blocked for good meanwhile (the
    /// runtime goes on), `Stopped` if the runtime has stopped. Seeing the
    /// end counts as observing it ([`Actor::observe`]).
    pub fn wait_actor(&self, actor: &Actor) -> crate::host::TaskEnd {
        // Every goroutine may be blocked already: an idle M looks again,
        // now that somebody is to be told.
        let look = || self.shared.wake_one();
        let stopped = || self.stopping().then(|| self.outcome()).flatten();
        self.shared.host.wait_actor(actor, look, stopped)
    }

    /// Waits until no goroutine is left (`Exit(0)`), or every one left is
    /// blocked for good (`Deadlock`), or the program ends otherwise.
    pub fn wait_all(&self) -> Outcome {
        self.shared
            .host
            .shutdown_wait
            .store(true, Ordering::Release);
        // An idle M looks again with the new rule.
        self.shared.wake_one();
        self.wait()
    }

    /// As [`Runtime::wait`], for at most `d`; `None` if still running.
    pub fn wait_timeout(&self, d: std::time::Duration) -> Option<Outcome> {
        let deadline = std::time::Instant::now() + d;
        let mut o = lock(&self.shared.outcome);
        loop {
            if let Some(o) = o.as_ref() {
                return Some(o.clone());
            }
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            o = o.wait_timeout(&self.shared.outcome_cv, left);
        }
    }

    /// Number of Ps.
    pub fn gomaxprocs(&self) -> usize {
        self.shared.nprocs()
    }

    /// Ps whose M is parked with nothing to run and not being woken (Go's
    /// `idleprocs`): a host call runs inline while there is one.
    pub fn idle_procs(&self) -> usize {
        self.shared.idle_procs()
    }

    /// Sets the number of Ps (clamped to 1..=[`MAX_PROCS`]); returns the
    /// previous number.
    pub fn set_gomaxprocs(&self, n: usize) -> usize {
        let n = n.clamp(1, MAX_PROCS);
        let old = self.shared.nprocs.swap(n, Ordering::AcqRel);
        self.shared.ensure_ms(n);
        // Retired Ms hand their queues over; newly active ones must look.
        for (_, t) in lock(&self.shared.idle).parked.iter() {
            t.unpark();
        }
        old
    }

    /// Goroutines alive in the whole program.
    pub fn numgoroutine(&self) -> usize {
        self.shared.census.goroutines()
    }

    /// Timers pending (sleeps, timers, tickers, deadlines).
    pub fn numtimers(&self) -> usize {
        self.shared.timers.len()
    }

    /// The actors alive (not ended), in id order.
    pub fn actors(&self) -> Vec<Arc<Actor>> {
        let mut v = self.shared.live_actors();
        v.retain(|a| !a.has_ended());
        v
    }

    /// Actors alive (not ended).
    pub fn numactors(&self) -> usize {
        self.shared
            .live_actors()
            .iter()
            .filter(|a| !a.has_ended())
            .count()
    }

    /// Whether the runtime is shutting down.
    pub fn stopping(&self) -> bool {
        self.shared.stopping()
    }

    /// Stops the world and reports every goroutine, for SIGQUIT (as Go
    /// does): the Ms stop at their next switch, running goroutines are
    /// preempted, and once no M runs Lua every actor is dumped. An actor
    /// whose goroutine cannot be stopped within `wait` (in a blocking
    /// call, or a C function that runs on) is listed without stacks. The
    /// runtime does not run again.
    pub fn stop_and_dump(&self, wait: std::time::Duration) -> String {
        let s = &self.shared;
        s.stopping.store(true, Ordering::Release);
        let deadline = std::time::Instant::now() + wait;
        while s.any_p_running() && std::time::Instant::now() < deadline {
            s.preempt_running();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        s.dump_all(Some(std::time::Duration::from_millis(100)))
    }

    /// Every goroutine of every actor, as a dump prints them, while the
    /// program goes on (SIGUSR1, the JVM's `jstack` habit): each actor's
    /// state is taken between two of its goroutines' turns, so its M waits
    /// meanwhile; one whose state stays held past `wait` (a goroutine in a
    /// blocking call) is listed without stacks.
    pub fn dump(&self, wait: std::time::Duration) -> String {
        self.shared.dump_all(Some(wait))
    }

    /// One line per goroutine of every actor, as `runtime.ps()` prints
    /// them (id, actor, state and seconds waited, created by, labels),
    /// while the program goes on; who created a goroutine is read under its
    /// actor's state when that is free within `wait` ("?" otherwise).
    pub fn ps(&self, wait: std::time::Duration) -> String {
        let mut recs = Vec::new();
        for a in self.actors() {
            recs.extend(
                with_state_within(&a, wait, |b| dump::records_of(b, true))
                    .unwrap_or_else(|| dump::records_of(&a, false)),
            );
        }
        dump::ps_listing(&recs, self.shared.config.face.hidden_chunk()) + "\n"
    }

    /// Actors whose state is open (ended actors are forgotten once their
    /// state is closed): for tests and diagnostics.
    pub fn tracked_actors(&self) -> usize {
        lock(&self.shared.actors).len()
    }
}

impl Shared {
    /// Number of Ps sysmon watches: every P whose M has started, retired
    /// ones included (an M of a retired P finishes the G it runs).
    fn watched_procs(&self) -> usize {
        self.nstarted()
    }

    /// Active Ps whose M is parked (not one being woken).
    fn idle_procs(&self) -> usize {
        let nprocs = self.nprocs();
        lock(&self.idle)
            .parked
            .iter()
            .filter(|&&(p, _)| p < nprocs && self.ps[p].status.get() == p::PStatus::Idle)
            .count()
    }

    /// Whether any P's M is running a G.
    fn any_p_running(&self) -> bool {
        (0..self.watched_procs()).any(|p| self.ps[p].slot().is_running())
    }

    /// Preempts the goroutine every M is running now.
    fn preempt_running(&self) {
        for p in 0..self.watched_procs() {
            let slot = self.ps[p].slot();
            if slot.is_running() {
                slot.signal();
            }
        }
    }

    /// Stops the goroutine every M is running now, for good (the runtime
    /// is closing): it raises at its next instruction, in a C call or a
    /// finalizer too.
    fn stop_running(&self) {
        for p in 0..self.watched_procs() {
            self.ps[p]
                .slot()
                .request_stop(0, crate::preempt::Stop::Shutdown);
        }
    }

    /// One schedtrace line, in the shape of Go's `GODEBUG=schedtrace`.
    /// Go's `scheddetail`: after the schedtrace line, one line per P
    /// (its M is the thread that runs it) and one per goroutine.
    fn schedtrace_detail(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.ps[..self.watched_procs()].iter().enumerate() {
            let slot = p.slot();
            let curg = match slot.gid() {
                0 => "-".to_string(),
                g => g.to_string(),
            };
            out.push_str(&format!(
                "\n  P{i}: status={:?} schedtick={} syscalltick={} runqsize={} curg={curg}",
                p.status.get(),
                p.ticks(),
                p.syscalltick.load(Ordering::Relaxed),
                p.len(),
            ));
        }
        let now = crate::clock::coarse_secs_now();
        for a in self.live_actors().iter().filter(|a| !a.has_ended()) {
            for g in a.goroutines() {
                let mut state = dump::state_word(g.status, g.reason).to_string();
                if let Some(w) = dump::waited_of(&g, now) {
                    state.push_str(&format!(", {w}"));
                }
                out.push_str(&format!("\n  G{}: status={state} actor={}", g.id, a.id));
            }
        }
        out
    }

    fn schedtrace_line(&self, ms: u64) -> String {
        let s = self;
        let nprocs = s.nprocs();
        let idleprocs = s.idle_procs();
        let (idlethreads, threads) = {
            let idle = lock(&s.idle);
            // Ms, plus sysmon and the thread that waits for the program.
            (idle.parked.len(), s.nstarted() + 2)
        };
        let runqs: Vec<String> = (0..nprocs).map(|p| s.ps[p].len().to_string()).collect();
        let global = lock(&s.global).len();
        format!(
            "SCHED {ms}ms: gomaxprocs={nprocs} idleprocs={idleprocs} threads={threads} \
             spinningthreads={} idlethreads={idlethreads} runqueue={global} [{}] goroutines={} actors={}",
            s.spinning.load(Ordering::Relaxed),
            runqs.join(" "),
            s.census.goroutines(),
            s.live_actors().iter().filter(|a| !a.has_ended()).count()
        )
    }
}
