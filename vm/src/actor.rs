//! Actors: one Lua state and the goroutines that live in it.
//!
//! An actor is the unit the Ps schedule. Its Lua state can be used by one
//! thread at a time, so its Gs run one at a time, on whichever M holds it.
//!
//! Invariants:
//! 1. `scheduled` is true while the actor sits on a run queue or is being
//!    run by an M; only the thread that flips it from false to true may put
//!    the actor on a queue. So one actor is never run by two Ms at once.
//! 2. The Lua state, every `mlua` value of it and every G's Lua thread are
//!    touched only by the M running the actor. Other threads (timers) wake
//!    Gs through [`GRef::ready`] with plain data.
//! 3. A G is in `runq`/`runnext` exactly when its status is `Runnable`.
//!
//! The way up: an actor reaches the runtime that runs it only through
//! [`Runner`] (put it on a run queue, drop its timers, forget it), which
//! the scheduler implements, and counts in the runtime's [`Census`].
//! Readies made by the M running the actor itself are deferred
//! (`enter`, `ActorQueue::apply_deferred`): one lock per switch.

use std::any::Any;
use std::cell::{Cell, RefCell, UnsafeCell};
use std::collections::VecDeque;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use mlua::{Function, Lua};
use slab::Slab;

use crate::census::Census;
use crate::ffi::LuaThread;
use crate::g::{GKey, GStatus, ParkWord, ParkWords, G};
use crate::gc::{GcKind, GcState};
use crate::lockrank::{Guard, Lock, Rank};
use crate::mem::{Account, NoMemory};
use crate::portable::SlotOwner;
use crate::wake::{Msg, SelectSends, WaitReason, Wake};

/// What an actor asks of the runtime that runs it: the one way up from
/// this layer, implemented by the scheduler (`crate::sched`).
pub trait Runner: Any + Send + Sync {
    /// `actor`, idle until now, has work: put it on a run queue and make
    /// sure an M runs it. The caller has set its `scheduled` flag
    /// (invariant 1).
    fn schedule(&self, actor: Arc<Actor>);
    /// `actor` has ended: what the runtime holds for it goes (its timers).
    fn ended(&self, actor: &Actor);
    /// The state of actor `id` is closed: forget it.
    fn closed(&self, id: u64);
    /// The runtime's counts.
    fn census(&self) -> &Census;
}

thread_local! {
    /// Id of the actor this thread (an M) is running; 0 if none.
    static RUNNING: Cell<u64> = const { Cell::new(0) };
    /// Readies of Gs of the running actor, made on this M, not yet applied.
    static DEFERRED: RefCell<Vec<(GKey, u64, Wake, Place)>> = const { RefCell::new(Vec::new()) };
}

/// The calling M starts running actor `id` (0: it stops running one).
pub(crate) fn enter(id: u64) {
    debug_assert!(
        id != 0 || DEFERRED.with_borrow(|d| d.is_empty()),
        "readies left unapplied"
    );
    RUNNING.set(id);
}

/// Id of the actor this thread is running (0 if none).
pub fn running() -> u64 {
    RUNNING.get()
}

/// After this many consecutive picks of `runnext` while other Gs wait, the
/// head of the run queue goes first: a ping-pong pair must not starve the
/// rest of the actor (tokio caps its LIFO slot the same way).
const RUNNEXT_STREAK_MAX: u32 = 16;

/// Where a readied G goes in its actor's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place {
    /// Ahead of everything but `runnext` (a sleeper whose time has come).
    Front,
    /// `runnext`: woken by the running G, it runs next (Go's `runqput(next)`).
    Next,
    /// The tail (woken from another thread).
    Back,
}

/// A G taken off the run queue to be resumed.
pub(crate) struct Picked {
    pub(crate) key: GKey,
    pub(crate) id: u64,
    pub(crate) thread: LuaThread,
    pub(crate) nstart: std::ffi::c_int,
    pub(crate) wake: Option<Wake>,
    pub(crate) sel_sends: Option<Box<SelectSends>>,
    /// Its slot's claim word, reopened for the park it may make.
    pub(crate) park: *const ParkWord,
}

/// The run queue of one actor and the table of its Gs.
pub(crate) struct ActorQueue {
    pub(crate) gs: Slab<G>,
    /// The claim words of the slots of `gs` (see [`crate::g`]).
    pub(crate) words: ParkWords,
    /// What is noted of the few Gs that have notes, by id: labels, leak
    /// marks (the rest pay nothing for either).
    notes: rustc_hash::FxHashMap<u64, Notes>,
    /// The slot of each G by id, made by the first lookup (`key_of`:
    /// `runtime.interrupt`) and kept from then on: an actor that never
    /// looks a G up pays nothing for it on each spawn and end.
    ids: Option<rustc_hash::FxHashMap<u64, GKey>>,
    runq: VecDeque<GKey>,
    runnext: Option<GKey>,
    runnext_streak: u32,
    /// See invariant 1.
    pub(crate) scheduled: bool,
    /// Work posted from other threads, run by the M before the next G
    /// (ids passed to the actor's task function: `time.afterfunc`).
    pub(crate) tasks: Vec<u64>,
    /// Slots of the values table let go of on other threads
    /// ([`SlotOwner::release_later`]), released by the M at its next run.
    pub(crate) released: Vec<std::ffi::c_int>,
    /// Work another thread asked for with the state held and no G running
    /// ([`Actor::post_job`]: another actor's `runtime.stack(true)`, a leak
    /// check's probe): run by its M between two goroutines' turns.
    pub(crate) jobs: Vec<Job>,
    /// What opens the state and starts the first G, run by the first M
    /// that runs the actor ([`Actor::post_start`]).
    pub(crate) start: Option<StartFn>,
    /// The state was opened and has not been idle since: the garbage of
    /// its opening (lugo's library made it) is still there.
    pub(crate) fresh: bool,
}

/// Work for an actor's M with the state held and no G running
/// ([`Actor::post_job`]); it gets a thread of the state to work on.
pub type Job = Box<dyn FnOnce(&Arc<Actor>, LuaThread) + Send>;

/// Opens a new actor's state and starts its first G; run once, by the
/// first M that runs the actor, which owns it then. An error ends the
/// actor with that message (what its handle's `wait` returns).
pub type StartFn = Box<dyn FnOnce(&Arc<Actor>) -> Result<(), String> + Send>;

impl ActorQueue {
    /// Whether G `gid` is in slot `key`, parked in park `gen`.
    fn parked_in(&mut self, key: GKey, gid: u64, gen: u64) -> bool {
        self.gs
            .get(key)
            .is_some_and(|g| g.id == gid && g.status == GStatus::Waiting)
            && self.words.get(key).is_open(gen)
    }

    /// The snapshot of the G in slot `key` (there is one).
    fn info(&mut self, key: GKey) -> GInfo {
        let g = &self.gs[key];
        let n = self.notes.get(&g.id);
        let leaked = n.and_then(|n| n.leaked);
        let (id, status) = (g.id, g.status);
        GInfo {
            id,
            status,
            reason: g.reason,
            thread: g.thread,
            since: g.since,
            labels: n.and_then(|n| n.labels.clone()),
            leaked: leaked.is_some_and(|gen| self.parked_in(key, id, gen)),
        }
    }

    /// Adds G `g` to the table; its slot.
    pub(crate) fn insert(&mut self, g: G) -> GKey {
        let id = g.id;
        let key = self.gs.insert(g);
        if let Some(ids) = &mut self.ids {
            ids.insert(id, key);
        }
        key
    }

    /// Takes the G of slot `key` out of the table (it has ended).
    pub(crate) fn remove(&mut self, key: GKey) -> G {
        let g = self.gs.remove(key);
        if let Some(ids) = &mut self.ids {
            ids.remove(&g.id);
        }
        if !self.notes.is_empty() {
            self.notes.remove(&g.id);
        }
        self.words.get(key).retire();
        g
    }

    /// The slot of G `gid`, if it is alive (the first lookup indexes the
    /// table: `ids`).
    pub(crate) fn key_of(&mut self, gid: u64) -> Option<GKey> {
        let gs = &self.gs;
        let ids = self
            .ids
            .get_or_insert_with(|| gs.iter().map(|(k, g)| (g.id, k)).collect());
        ids.get(&gid).copied()
    }

    /// An empty queue of an idle actor.
    fn new() -> ActorQueue {
        ActorQueue {
            gs: Slab::new(),
            words: ParkWords::default(),
            notes: Default::default(),
            ids: None,
            runq: VecDeque::new(),
            runnext: None,
            runnext_streak: 0,
            scheduled: false,
            tasks: Vec::new(),
            released: Vec::new(),
            jobs: Vec::new(),
            start: None,
            fresh: false,
        }
    }

    /// Applies the readies this M deferred while it ran the actor
    /// ([`Actor::ready`]); called by the M each time it takes the lock.
    pub(crate) fn apply_deferred(&mut self) {
        DEFERRED.with_borrow_mut(|d| {
            for (key, id, wake, place) in d.drain(..) {
                self.make_ready(key, id, wake, place);
            }
        });
    }

    fn push_runnext(&mut self, key: GKey) {
        if let Some(old) = self.runnext.replace(key) {
            self.runq.push_back(old);
        }
    }

    pub(crate) fn push_back(&mut self, key: GKey) {
        self.runq.push_back(key);
    }

    /// Makes G `key` (if it is still G `id`) runnable with `wake`; true if
    /// it was queued. A G woken between registering its waiter and yielding
    /// (a timer on another thread) is `Running`: it keeps the wake and its
    /// M re-queues it when the yield lands.
    pub(crate) fn make_ready(&mut self, key: GKey, id: u64, wake: Wake, place: Place) -> bool {
        let Some(g) = self.gs.get_mut(key).filter(|g| g.id == id) else {
            return false;
        };
        match g.status {
            GStatus::Waiting => {
                g.status = GStatus::Runnable;
                g.reason = WaitReason::None;
                g.wake = Some(wake);
                match place {
                    Place::Front => self.runq.push_front(key),
                    Place::Next => self.push_runnext(key),
                    Place::Back => self.runq.push_back(key),
                }
                true
            }
            GStatus::Running => {
                debug_assert!(g.wake.is_none(), "G {} woken twice", g.id);
                g.wake = Some(wake);
                false
            }
            GStatus::Runnable => panic!(
                "lugo: ready of runnable goroutine {} (a waiter was woken twice)",
                g.id
            ),
        }
    }

    /// Whether G `key` is still G `id` (it has not ended).
    pub(crate) fn is_alive(&self, key: GKey, id: u64) -> bool {
        self.gs.get(key).is_some_and(|g| g.id == id)
    }

    /// Whether an M running the actor would find something to do: a
    /// runnable G, a posted task, a state to open.
    pub(crate) fn has_work(&self) -> bool {
        self.has_runnable()
            || !self.tasks.is_empty()
            || self.start.is_some()
            || !self.jobs.is_empty()
    }

    /// Whether a G is runnable.
    pub(crate) fn has_runnable(&self) -> bool {
        self.runnext.is_some() || !self.runq.is_empty()
    }

    /// The next G to run, marked `Running`.
    pub(crate) fn pick(&mut self) -> Option<Picked> {
        let key = match self.runnext.take() {
            Some(k) if self.runnext_streak < RUNNEXT_STREAK_MAX || self.runq.is_empty() => {
                self.runnext_streak += 1;
                k
            }
            Some(k) => {
                self.runnext_streak = 0;
                self.runq.push_back(k);
                self.runq.pop_front()?
            }
            None => {
                self.runnext_streak = 0;
                self.runq.pop_front()?
            }
        };
        let g = &mut self.gs[key];
        debug_assert_eq!(
            g.status,
            GStatus::Runnable,
            "picked G {} not runnable",
            g.id
        );
        g.status = GStatus::Running;
        let park = self.words.get(key);
        park.reopen();
        let g = &mut self.gs[key];
        Some(Picked {
            key,
            id: g.id,
            thread: g.thread,
            nstart: std::mem::take(&mut g.nstart),
            wake: g.wake.take(),
            sel_sends: g.sel_sends.take(),
            park,
        })
    }
}

/// One isolated Lua state and its goroutines.
pub struct Actor {
    /// Program-wide actor id; the main actor is 1.
    pub id: u64,
    /// The runtime that runs it.
    rt: Box<dyn Runner>,
    /// The actor's state; dropped by [`Actor::close_state`] once the actor
    /// has ended (see the `Sync` impl below).
    lua: UnsafeCell<ManuallyDrop<Lua>>,
    /// The state's main thread: idle while the M runs Gs, it is where the
    /// scheduler builds values ([`crate::ffi::resume`]) and tracebacks.
    pub(crate) main_thread: LuaThread,
    /// What its memory limit covers (`crate::mem`).
    account: Arc<Account>,
    /// lugo's allocator, installed in the state until it closes.
    mem_token: Lock<Option<crate::mem::Token>>,
    state_closed: AtomicBool,
    q: Lock<ActorQueue>,
    /// Key, id and claim word of the G being run (valid while an M runs
    /// this actor; the word is null otherwise).
    current_key: AtomicUsize,
    current_id: AtomicU64,
    current_park: AtomicPtr<ParkWord>,
    /// Called with a task id for each posted task (set by the stdlib).
    task_fn: Lock<Option<Function>>,
    /// Heap figures for sysmon and its pending GC request.
    pub gc: GcState,
    /// Id of the actor's first G: when it returns, the actor ends.
    main_gid: AtomicU64,
    /// How the actor ended, once it has.
    ended: Lock<Option<Result<(), String>>>,
    /// What its body returned (copied as messages are), for `wait`.
    results: Lock<Option<Arc<Vec<crate::portable::Portable>>>>,
    /// Who waits for the actor to end; `None` once it has ended and its
    /// state is closed (they were told).
    end_waiters: Lock<Option<Vec<EndWaiter>>>,
    /// Time the actor has run on an M, in ns (kept when the runtime has a
    /// CPU budget; written only by the M that runs the actor).
    cpu_used_ns: AtomicU64,
    /// Time spent in blocking calls since the last charge: not CPU time.
    blocked_ns: AtomicU64,
    /// Pending timers that wake its goroutines or post its tasks
    /// ([`crate::timer::Timers::purge`]).
    pub(crate) timers: AtomicUsize,
    /// The G now in a blocking call (`io.read`, a blocking host function),
    /// 0 if none: its M holds the state meanwhile.
    blocking_gid: AtomicU64,
    /// A leak check's probe is under way in the actor
    /// ([`crate::leak`]): what it hands out meanwhile is noted in
    /// `touched`.
    pub(crate) probing: AtomicBool,
    /// The shared objects the actor handed out while probed.
    pub(crate) touched: Lock<Vec<usize>>,
}

/// What the runtime notes of a goroutine beyond its record.
#[derive(Clone, Default)]
pub(crate) struct Notes {
    /// Its labels (`runtime.setlabel`); a G starts with its creator's.
    labels: Option<Labels>,
    /// The park generation the last leak check found it leaked in: it is
    /// marked `leaked` while that park lasts.
    leaked: Option<u64>,
}

/// Who waits for an actor to end and its state to close.
enum EndWaiter {
    /// A goroutine (`actor:wait`), readied with no values.
    G(GRef),
    /// A host thread (`crate::host`), told by this call.
    Host(Box<dyn FnOnce() + Send>),
}

/// The main G id of an actor that has none: the main actor of a runtime
/// embedded by a host, which lives until the host shuts it down.
pub const NO_MAIN_G: u64 = u64::MAX;

/// A reference to one park of one G, that can complete it from any
/// thread: a waiter record.
#[derive(Clone)]
pub struct GRef {
    /// The G's actor.
    pub actor: Arc<Actor>,
    key: GKey,
    /// The G's id, to tell a reused slot from the original.
    pub id: u64,
    /// The G's slot's claim word, and the generation of the park this
    /// waits for.
    park: WordRef,
    gen: u64,
}

/// The address of a claim word of an actor's [`ParkWords`], kept with a
/// reference to that actor ([`GRef::actor`]).
#[derive(Clone, Copy)]
struct WordRef(std::ptr::NonNull<ParkWord>);

// SAFETY: a `WordRef` is only read through `GRef`, which holds the actor
// whose queue owns the word: the chunks of `ParkWords` never move or go
// away while the actor lives, and a `ParkWord` is an atomic, shared by
// every thread alike.
unsafe impl Send for WordRef {}
// SAFETY: as for `Send`.
unsafe impl Sync for WordRef {}

impl GRef {
    fn word(&self) -> &ParkWord {
        // SAFETY: see `WordRef`: `self.actor` keeps the word alive.
        unsafe { self.park.0.as_ref() }
    }
}

impl GRef {
    /// Takes the right to complete this park (see [`crate::g`]): false if
    /// someone else has (another case of its select, an interrupt).
    #[inline]
    pub fn claim(&self) -> bool {
        self.word().claim(self.gen)
    }

    /// Whether this park can still be completed (nobody has claimed it).
    #[inline]
    pub fn is_open(&self) -> bool {
        self.word().is_open(self.gen)
    }

    /// Completes the park, if nobody has: the G becomes runnable with
    /// `wake` as its results. A G that has died meanwhile is ignored.
    pub fn ready(&self, wake: Wake) {
        if self.claim() {
            self.ready_claimed(wake);
        }
    }

    /// Completes a park this caller has claimed ([`GRef::claim`]).
    pub fn ready_claimed(&self, wake: Wake) {
        self.actor.ready(self.key, self.id, wake, false);
    }

    /// As [`GRef::ready`], but the G goes to the front of its actor's run
    /// queue: a sleeper whose deadline has passed runs before Gs that were
    /// merely runnable (it has waited long enough; a queue of freshly
    /// spawned Gs must not add to its lateness).
    pub fn ready_front(&self, wake: Wake) {
        if self.claim() {
            self.actor.ready(self.key, self.id, wake, true);
        }
    }
}

impl GRef {
    /// The G's parked select no longer owns the value of its send case
    /// `case` (the channel it waits on became shared and keeps it).
    /// Runs on the M that owns the actor, while the G is parked.
    pub(crate) fn disown_select_send(&self, case: usize) {
        let mut q = self.actor.lock();
        let Some(g) = q.gs.get_mut(self.key).filter(|g| g.id == self.id) else {
            return;
        };
        if let Some(sends) = g.sel_sends.as_mut() {
            for (c, m) in sends.iter_mut() {
                if *c == case {
                    *m = Msg::Nil;
                }
            }
        }
    }
}

impl std::fmt::Debug for GRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "G{} (actor {})", self.id, self.actor.id)
    }
}

/// A snapshot of one G for stack dumps.
#[derive(Clone)]
pub struct GInfo {
    /// Goroutine id.
    pub id: u64,
    /// Status.
    pub status: GStatus,
    /// Wait reason.
    pub reason: WaitReason,
    /// Its thread (only to be used by the M running the actor).
    pub thread: LuaThread,
    /// When it parked, while waiting ([`crate::clock::coarse_secs`]).
    pub since: u32,
    /// Its labels (`runtime.setlabel`), in the order they were set.
    pub labels: Option<Labels>,
    /// The last leak check found it leaked, in the park it is in.
    pub leaked: bool,
}

/// A goroutine's labels: key and value pairs, shared with the goroutines
/// it starts (a new label makes a new list).
pub type Labels = Arc<[(String, String)]>;

impl Actor {
    pub(crate) fn new(
        rt: Box<dyn Runner>,
        id: u64,
        account: Arc<Account>,
        face: &'static crate::ffi::Face,
    ) -> mlua::Result<Arc<Actor>> {
        account
            .hold(crate::mem::ACTOR_BYTES)
            .map_err(|_| mlua::Error::MemoryError("not enough memory".into()))?;
        let (lua, l, token) = match crate::mem::new_state(account.clone()) {
            Ok(made) => made,
            Err(e) => {
                account.release(crate::mem::ACTOR_BYTES);
                return Err(e);
            }
        };
        let main_thread = match crate::ffi::init_state(&lua, face) {
            Ok(main) => main,
            Err(e) => {
                // SAFETY: the state is new and this thread's alone.
                unsafe { crate::mem::close_state(Some(lua), l, token) };
                account.release(crate::mem::ACTOR_BYTES);
                return Err(e);
            }
        };
        // Once `lua_close` has run the finalizers, the M's slot lets go of
        // the main thread before its block is freed: a preemption signal
        // handled then finds no thread to arm a hook in.
        token.before_last_free(Box::new(move || crate::preempt::unpublish(main_thread.0)));
        token.arm();
        // Made with its collector stopped (`mem::new_state`): running now.
        // SAFETY: inert (the state is this thread's alone).
        unsafe { mlua::ffi::lua_gc(l, mlua::ffi::LUA_GCRESTART, 0) };
        Ok(Arc::new(Actor {
            id,
            rt,
            lua: UnsafeCell::new(ManuallyDrop::new(lua)),
            main_thread,
            account,
            mem_token: Lock::new(Rank::ActorMemToken, Some(token)),
            state_closed: AtomicBool::new(false),
            q: Lock::new(Rank::ActorQueue, ActorQueue::new()),
            current_key: AtomicUsize::new(usize::MAX),
            current_id: AtomicU64::new(0),
            current_park: AtomicPtr::new(std::ptr::null_mut()),
            task_fn: Lock::new(Rank::ActorTaskFn, None),
            gc: GcState::default(),
            main_gid: AtomicU64::new(0),
            ended: Lock::new(Rank::ActorEnded, None),
            results: Lock::new(Rank::ActorEnded, None),
            end_waiters: Lock::new(Rank::ActorWaiters, Some(Vec::new())),
            cpu_used_ns: AtomicU64::new(0),
            blocked_ns: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            touched: Lock::new(Rank::LeakTouched, Vec::new()),
            timers: AtomicUsize::new(0),
            blocking_gid: AtomicU64::new(0),
        }))
    }

    /// The actor's Lua state. Only the M running the actor may use it.
    pub fn lua(&self) -> &Lua {
        debug_assert!(
            !self.is_closed(),
            "actor {}: state used after close",
            self.id
        );
        // SAFETY: the state is only dropped by `close_state`, after the
        // actor has ended, by the M that ran it last, when nothing can run
        // it again (an ended actor stays `scheduled` and is never queued);
        // callers of `lua` run on the actor's M while it is active.
        unsafe { &*self.lua.get() }
    }

    /// Runs `f` holding the Lua state's own lock (mlua's). The M holds it
    /// for a whole run of the actor: the raw C API used on the hot paths
    /// (`crate::ffi`) does not take it, and another thread using the state
    /// through mlua (a host setting up the main goroutine) must wait.
    pub(crate) fn with_state<R>(&self, f: impl FnOnce() -> R) -> R {
        self.lua().exec_raw_lua(|_| f())
    }

    pub(crate) fn lock(&self) -> Guard<'_, ActorQueue> {
        // A poisoned queue means a Rust panic while it was held: the
        // runtime's invariants are gone, so stopping is the only option.
        self.q.lock()
    }

    /// Sets the function that runs posted tasks.
    pub fn set_task_fn(&self, f: Function) {
        *self.task_fn.lock() = Some(f);
    }

    pub(crate) fn task_fn(&self) -> Option<Function> {
        self.task_fn.lock().clone()
    }

    /// Labels goroutine `gid` with `key = value` (`runtime.setlabel`):
    /// replaces the key's value, or adds it last. False if there is no
    /// such goroutine.
    pub fn set_label(&self, gid: u64, key: &str, value: &str) -> bool {
        let mut q = self.lock();
        if q.key_of(gid).is_none() {
            return false;
        }
        let notes = q.notes.entry(gid).or_default();
        let mut l: Vec<(String, String)> = notes
            .labels
            .as_ref()
            .map(|l| l.to_vec())
            .unwrap_or_default();
        match l.iter_mut().find(|(k, _)| k == key) {
            Some((_, v)) => *v = value.to_string(),
            None => l.push((key.to_string(), value.to_string())),
        }
        notes.labels = Some(l.into());
        true
    }

    /// Whether goroutine `gid` is one of the actor's, alive.
    pub fn has_goroutine(&self, gid: u64) -> bool {
        self.lock().key_of(gid).is_some()
    }

    /// Whether `gid` is the actor's first G (its end ends the actor).
    pub fn is_main_g(&self, gid: u64) -> bool {
        self.main_gid.load(Ordering::Acquire) == gid
    }

    /// Sets the actor's main G (`NO_MAIN_G`: none; no G's end ends it).
    pub fn set_main_g(&self, gid: u64) {
        self.main_gid.store(gid, Ordering::Release);
    }

    /// How the actor ended, if it has.
    pub fn result(&self) -> Option<Result<(), String>> {
        self.ended.lock().clone()
    }

    /// Keeps what the actor's body returned, copied (its last act).
    pub fn set_results(&self, values: Vec<crate::portable::Portable>) {
        *self.results.lock() = Some(Arc::new(values));
    }

    /// What the actor's body returned, once it has (see
    /// [`Actor::set_results`]).
    pub fn results(&self) -> Option<Arc<Vec<crate::portable::Portable>>> {
        self.results.lock().clone()
    }

    /// Someone has seen how the actor ended (its handle's `wait`): its
    /// error is no longer listed in dumps.
    pub fn observe(&self) {
        self.rt.census().unobserved.forget(self.id);
    }

    /// Queues `g` to be woken when the actor has ended and its state is
    /// closed (its memory given back); false if that is done.
    pub fn wait_end(&self, g: GRef) -> bool {
        self.add_end_waiter(EndWaiter::G(g))
    }

    /// As [`Actor::wait_end`], for a host thread: `told` is called once
    /// the actor has ended and its state is closed, on the thread that
    /// closed it, holding no lock (it must only wake the host: set a flag,
    /// notify a condition variable). False, and `told` is dropped
    /// uncalled, if that is done.
    pub fn on_finished(&self, told: Box<dyn FnOnce() + Send>) -> bool {
        self.add_end_waiter(EndWaiter::Host(told))
    }

    fn add_end_waiter(&self, w: EndWaiter) -> bool {
        match &mut *self.end_waiters.lock() {
            Some(waiters) => {
                waiters.push(w);
                true
            }
            None => false,
        }
    }

    /// Whether the actor has ended and its state is closed.
    pub fn finished(&self) -> bool {
        self.end_waiters.lock().is_none()
    }

    /// Ends the actor (its first G returned, or a G panicked): its other
    /// Gs are dropped, as a program's are when main returns, and whoever
    /// waits for it is woken. Runs on the M that owns the actor.
    pub(crate) fn end(&self, result: Result<(), String>) {
        {
            let mut ended = self.ended.lock();
            if ended.is_some() {
                return;
            }
            if let Err(e) = &result {
                // Listed in dumps until someone waits for it.
                self.rt.census().unobserved.record(self.id, e);
            }
            *ended = Some(result);
        }
        let (gs, start): (Vec<G>, _) = {
            let mut q = self.lock();
            q.runq.clear();
            q.runnext = None;
            q.tasks.clear();
            q.notes.clear();
            q.ids = None;
            // Their waiters die with them: nothing is handed to a G that
            // will never run again.
            let q = &mut *q;
            for (key, _) in q.gs.iter() {
                q.words.get(key).retire();
            }
            (q.gs.drain().collect(), q.start.take())
        };
        // Its values (copies of the spawner's arguments) let go of slots of
        // other actors, under their locks: not under this one's.
        drop(start);
        for g in &gs {
            // SAFETY: this M owns the actor; no G of it runs now.
            unsafe { crate::ffi::unref_thread(self.main_thread, g.thread_ref) };
        }
        self.rt.census().goroutines_ended(gs.len());
        self.account.release(gs.len() * crate::mem::G_BYTES);
        // Its goroutines' sleeps and its afterfuncs can never run now.
        self.rt.ended(self);
        // Nothing of the state runs again; its M drops it after this run
        // (`close_state`), and wakes whoever waits for the actor then, so
        // that a `wait` that returns finds the actor's memory given back.
        *self.task_fn.lock() = None;
    }

    /// Adds the time since `*mark` to the actor's running time, moves
    /// `mark` to now and returns the total in ns (on the M running it).
    pub(crate) fn charge_cpu(&self, mark: &mut std::time::Instant) -> u64 {
        let now = std::time::Instant::now();
        let ran = now.saturating_duration_since(*mark).as_nanos() as u64;
        let ran = ran.saturating_sub(self.blocked_ns.swap(0, Ordering::Relaxed));
        *mark = now;
        let used = self.cpu_used_ns.load(Ordering::Relaxed).saturating_add(ran);
        self.cpu_used_ns.store(used, Ordering::Relaxed);
        used
    }

    /// Time the actor has run so far, in ns (as last charged).
    pub(crate) fn cpu_used(&self) -> u64 {
        self.cpu_used_ns.load(Ordering::Relaxed)
    }

    /// The running G enters (`true`) or leaves a blocking call.
    pub fn set_blocking(&self, on: bool) {
        let gid = if on { self.current_id() } else { 0 };
        self.blocking_gid.store(gid, Ordering::Release);
    }

    /// The G in a blocking call, or 0.
    pub fn blocking_gid(&self) -> u64 {
        self.blocking_gid.load(Ordering::Acquire)
    }

    /// Records time the running goroutine spent in a blocking call (its P
    /// handed off): it does not count against the CPU budget.
    pub fn credit_blocked(&self, d: std::time::Duration) {
        self.blocked_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Ends the actor and drops its state, once no M can run it again (the
    /// runtime is closing: `Runtime::close`). Its goroutines are dropped
    /// with the state; nobody is woken (nothing runs any more).
    pub(crate) fn close_for_shutdown(&self) {
        {
            let mut ended = self.ended.lock();
            if ended.is_none() {
                *ended = Some(Ok(()));
            }
        }
        let gs = std::mem::take(&mut self.lock().gs);
        self.rt.census().goroutines_ended(gs.len());
        self.account.release(gs.len() * crate::mem::G_BYTES);
        *self.task_fn.lock() = None;
        self.close_state();
    }

    /// Drops an actor that was made but never started (its first
    /// goroutine could not be made): it ends, and its state goes at once.
    /// Runs on the thread that made it; nothing can schedule it.
    pub fn discard(&self) {
        {
            let mut ended = self.ended.lock();
            if ended.is_none() {
                *ended = Some(Err("not started".into()));
            }
        }
        debug_assert!(self.lock().gs.is_empty(), "a discarded actor has no G");
        *self.task_fn.lock() = None;
        self.close_state();
    }

    /// Whether Lua code runs on the state's main thread now, below the
    /// caller: a host thread that holds the state's lock is inside a call
    /// of its own (`Function::call` through mlua). Its Gs can run neither
    /// on an M (the lock is held) nor on that thread (the main thread, the
    /// scheduler's, is not idle). Call it holding the state's lock.
    pub fn main_thread_busy(&self) -> bool {
        let mut ar = std::mem::MaybeUninit::<mlua::ffi::lua_Debug>::zeroed();
        // SAFETY: the caller holds the state's lock, so no other thread
        // runs the main thread; `lua_getstack` only reads its call info
        // into `ar`, zeroed, which it may write.
        unsafe { mlua::ffi::lua_getstack(self.main_thread.0, 0, ar.as_mut_ptr()) != 0 }
    }

    /// Whether the actor's state has been dropped.
    pub fn is_closed(&self) -> bool {
        self.state_closed.load(Ordering::Acquire)
    }

    /// Drops the state of an ended actor, freeing its memory (its
    /// finalizers run: sockets close, channels let go). Called by the M
    /// that ran the actor last, outside `with_state`.
    pub(crate) fn close_state(&self) {
        debug_assert!(self.has_ended());
        if self.state_closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // The M's slot, which published the main thread while finalizers
        // ran, lets go of it before its block is freed (`before_last_free`,
        // set in `new`), so before anyone is told below (a host told may
        // stop the runtime at once, which signals every slot).
        // SAFETY: see `lua`: the actor has ended and this M is the only one
        // that can reach its state; `state_closed` makes this the one close,
        // and no `lua()` borrow is alive (we are outside `with_state`).
        unsafe { self.close_lua() };
        self.rt.closed(self.id);
        let waiters = self.end_waiters.lock().take();
        for w in waiters.into_iter().flatten() {
            match w {
                EndWaiter::G(g) => g.ready(Wake::Unit),
                EndWaiter::Host(told) => told(),
            }
        }
    }

    /// Closes the state: mlua's handle goes, then `lua_close` frees it all.
    ///
    /// # Safety
    /// The state is closed once (`state_closed`), by this thread, which
    /// alone uses it, and nothing of it is used after.
    unsafe fn close_lua(&self) {
        // The guard of `mem_token` goes before `lua_close` runs finalizers
        // (rule 1).
        let token = self.mem_token.lock().take();
        if let Some(token) = token {
            // SAFETY: the caller's contract; `token` came from `new_state`
            // for this state and is taken out of `mem_token`, so it is
            // given back once. The handle is taken out of its cell once
            // (`state_closed`).
            unsafe {
                let lua = ManuallyDrop::take(&mut *self.lua.get());
                crate::mem::close_state(Some(lua), self.main_thread.0, token);
            }
        }
    }

    /// Keeps `data` for the library that gives Lua its API, found again
    /// from any thread of the state with [`crate::mem::face_data`] (lugo's
    /// C functions find their state's record so, without an upvalue).
    pub fn set_face_data(&self, data: *mut std::ffi::c_void) {
        if let Some(token) = &*self.mem_token.lock() {
            token.set_face_data(data);
        }
    }

    /// What the actor's memory limit covers.
    pub fn account(&self) -> &Arc<Account> {
        &self.account
    }

    /// Whether the actor has ended.
    pub fn has_ended(&self) -> bool {
        self.ended.lock().is_some()
    }

    /// Asks the M that next runs this actor to collect (sysmon's GC
    /// policy); an idle actor is scheduled for it.
    pub fn request_gc(self: &Arc<Self>, kind: GcKind) {
        if self.gc.request(kind) {
            crate::trace::instant("collection asked");
            self.post(|_| {});
        }
    }

    /// Runs a pending GC request; called by the M that runs the actor,
    /// before its first G. Publishes the heap size either way.
    pub(crate) fn collect_if_asked(&self) {
        if self.has_ended() {
            return;
        }
        if let Some(kind) = self.gc.take() {
            let done = match kind {
                GcKind::IdleStep => self.lua().gc_step().map(|_| ()),
                GcKind::Periodic | GcKind::Limit => self.lua().gc_collect(),
            };
            // A collection that fails (an error in a __gc) is not retried.
            if done.is_ok() {
                self.rt.census().stats.gc.count(kind);
                let full = (kind != GcKind::IdleStep).then(crate::clock::now_ns);
                self.gc.collected(full, self.account.used());
            }
        }
        self.publish_heap();
    }

    /// Collects the garbage its opening left, once, when the actor first
    /// has nothing to run (on its M): an actor that waits from the start
    /// (a server, a worker of a pool) holds only what it uses; one that
    /// returns at once never pays for it (its state is closed).
    pub(crate) fn collect_opening(&self) {
        if self.lua().gc_collect().is_ok() {
            self.gc
                .collected(Some(crate::clock::now_ns()), self.account.used());
        }
    }

    /// Publishes the memory the actor uses for sysmon (on the M running
    /// the actor): what its limit counts, the Lua heap and what is held.
    pub(crate) fn publish_heap(&self) {
        self.gc.used.store(self.account.used(), Ordering::Relaxed);
    }

    /// The actor's own memory limit in bytes (0: none but its spawner's).
    pub fn memory_limit(&self) -> usize {
        self.account.limit()
    }

    /// Counts a full collection asked for by the program (`runtime.gc()`).
    pub fn count_user_gc(&self) {
        self.rt
            .census()
            .stats
            .gc
            .user
            .fetch_add(1, Ordering::Relaxed);
        self.gc
            .collected(Some(crate::clock::now_ns()), self.account.used());
    }

    /// Releases the slots let go of on other threads (on the actor's M).
    pub(crate) fn release_slots(&self) {
        let slots = std::mem::take(&mut self.lock().released);
        if !slots.is_empty() {
            // SAFETY: this M owns the actor; its main thread is idle (with
            // the two free stack slots needed), the slots are of its values
            // table (`release_later` queues the actor's own), and releasing
            // a slot is inert.
            unsafe { crate::ffi::release_slots(self.main_thread.0, &slots) };
        }
    }

    /// Has the first M that runs the actor open its state and start its
    /// first G (`start`), instead of the spawning thread: a spawn costs
    /// the spawner a state, and the rest of the work goes to an M that
    /// can take it (`actor.spawn` in a loop keeps every P busy).
    pub fn post_start(self: &Arc<Self>, start: StartFn) {
        self.post(|q| q.start = Some(start));
    }

    /// Posts `job`, run by the actor's M with the state held between two
    /// goroutines' turns (never, if the actor has ended).
    pub fn post_job(self: &Arc<Self>, job: Job) {
        self.post(|q| q.jobs.push(job));
    }

    /// Marks goroutines found leaked (slot, id and park generation),
    /// replacing the marks of the check before; one that has ended is not
    /// marked.
    pub fn set_leaked(&self, leaked: impl IntoIterator<Item = (GKey, u64, u64)>) {
        let mut q = self.lock();
        let q = &mut *q;
        q.notes.retain(|_, n| {
            n.leaked = None;
            n.labels.is_some()
        });
        for (key, gid, gen) in leaked {
            if q.gs.get(key).is_some_and(|g| g.id == gid) {
                q.notes.entry(gid).or_default().leaked = Some(gen);
            }
        }
    }

    /// Whether goroutine `gid` is parked in the park `gen`, its slot `key`:
    /// a leak check's verdict on it still holds.
    pub fn still_parked(&self, key: GKey, gid: u64, gen: u64) -> bool {
        self.lock().parked_in(key, gid, gen)
    }

    /// Posts task `id` to be run by the actor's task function on its M.
    pub fn post_task(self: &Arc<Self>, id: u64) {
        self.post(|q| q.tasks.push(id));
    }

    /// Takes the actor for the calling thread, as an M takes it off a run
    /// queue, if it is idle (invariant 1): a host thread about to run a
    /// call inline. It is given back by a run, or by [`Actor::unclaim`].
    pub(crate) fn claim(&self) -> bool {
        !std::mem::replace(&mut self.lock().scheduled, true)
    }

    /// Gives back an actor taken by [`Actor::claim`] and not run: work that
    /// came meanwhile goes to an M.
    pub(crate) fn unclaim(self: &Arc<Self>) {
        let schedule = {
            let mut q = self.lock();
            q.scheduled = q.has_work();
            q.scheduled
        };
        if schedule {
            self.rt.schedule(self.clone());
        }
    }

    /// Adds work for the M that next runs the actor (`add`, under the
    /// queue's lock), and queues the actor unless it is queued or running
    /// (invariant 1).
    fn post(self: &Arc<Self>, add: impl FnOnce(&mut ActorQueue)) {
        let schedule = {
            let mut q = self.lock();
            add(&mut q);
            !std::mem::replace(&mut q.scheduled, true)
        };
        if schedule {
            self.rt.schedule(self.clone());
        }
    }

    /// Starts a new G running `thread` (kept alive by the registry
    /// reference `thread_ref`, which the G owns from now on); returns its id.
    /// The thread's function and its `nargs` arguments are on its stack.
    /// The new G runs next (Go's `newproc` puts it in `runnext`).
    /// Refused past the actor's memory limit (its record is charged).
    pub fn spawn(
        self: &Arc<Self>,
        thread: LuaThread,
        thread_ref: std::ffi::c_int,
        nargs: std::ffi::c_int,
    ) -> Result<u64, NoMemory> {
        self.account.hold(crate::mem::G_BYTES)?;
        let id = self.rt.census().goroutine_started();
        crate::trace::go(id);
        let _ = self
            .main_gid
            .compare_exchange(0, id, Ordering::AcqRel, Ordering::Acquire);
        let schedule = {
            let mut q = self.lock();
            let key = q.insert(G {
                id,
                thread,
                thread_ref,
                nstart: nargs,
                status: GStatus::Runnable,
                reason: WaitReason::None,
                wake: None,
                sel_sends: None,
                interrupted: None,
                since: 0,
            });
            // A G starts with the labels of the G that started it.
            if !q.notes.is_empty() {
                let parent = self.current_id.load(Ordering::Relaxed);
                if let Some(l) = q.notes.get(&parent).and_then(|n| n.labels.clone()) {
                    q.notes.entry(id).or_default().labels = Some(l);
                }
            }
            q.push_runnext(key);
            !std::mem::replace(&mut q.scheduled, true)
        };
        if schedule {
            self.rt.schedule(self.clone());
        }
        Ok(id)
    }

    /// Grows the Lua stack of G `gid` (not started yet) to hold `slots`
    /// values: a program's or an actor's main chunk gets the room a main
    /// thread has, so its memory use (`collectgarbage("count")`) does not
    /// jump as its stack grows in its first calls. Runs on the thread that
    /// holds the actor's state.
    pub fn reserve_stack(&self, gid: u64, slots: std::ffi::c_int) {
        let q = self.lock();
        // A scan: the main G is among the first (no index made for it).
        if let Some((_, g)) = q.gs.iter().find(|(_, g)| g.id == gid) {
            // SAFETY: the caller holds the state; the G has not run, its
            // thread is suspended; lua_checkstack is inert (it returns 0
            // instead of raising).
            unsafe { mlua::ffi::lua_checkstack(g.thread.0, slots) };
        }
    }

    /// A waiter for the park the G now running on this actor is about to
    /// make.
    pub fn current(self: &Arc<Self>) -> GRef {
        static NOBODY: ParkWord = ParkWord::new();
        // No G runs (a misuse): a word no G has, so nothing is woken.
        let p = std::ptr::NonNull::new(self.current_park.load(Ordering::Relaxed))
            .unwrap_or(std::ptr::NonNull::from(&NOBODY));
        let park = WordRef(p);
        GRef {
            actor: self.clone(),
            key: self.current_key.load(Ordering::Relaxed),
            id: self.current_id.load(Ordering::Relaxed),
            park,
            // SAFETY: `p` is the running G's word in this actor's
            // `ParkWords` (set by the M running this actor, on this thread),
            // alive with the actor; or `NOBODY`, a static.
            gen: unsafe { p.as_ref() }.open_gen(),
        }
    }

    /// Records the values of the running G's select that is about to park
    /// (see [`crate::g::G::sel_sends`]).
    pub fn set_select_sends(&self, sends: Vec<(usize, Msg)>) {
        let key = self.current_key.load(Ordering::Relaxed);
        if let Some(g) = self.lock().gs.get_mut(key) {
            g.sel_sends = Some(Box::new(sends));
        }
    }

    /// Id of the G now running on this actor (0 outside any G).
    pub fn current_id(&self) -> u64 {
        self.current_id.load(Ordering::Relaxed)
    }

    pub(crate) fn set_current(&self, key: GKey, id: u64, park: *const ParkWord) {
        self.current_key.store(key, Ordering::Relaxed);
        self.current_id.store(id, Ordering::Relaxed);
        self.current_park.store(park.cast_mut(), Ordering::Relaxed);
    }

    /// Stops goroutine `gid` of this actor if it is parked: its park is
    /// claimed and it is readied with [`Wake::Interrupted`] at once, its
    /// waiters left dead. A G that runs, or is runnable, is marked: a park
    /// it lands is claimed so too (the caller also stops a running one).
    /// False if the actor has no such goroutine.
    pub fn interrupt(self: &Arc<Self>, gid: u64) -> bool {
        let why = crate::preempt::Stop::Interrupt;
        let schedule = {
            let mut q = self.lock();
            let Some(key) = q.key_of(gid) else {
                return false;
            };
            let q = &mut *q;
            let g = &mut q.gs[key];
            g.interrupted = Some(why);
            let parked = g.status == GStatus::Waiting && q.words.get(key).claim_open();
            if parked {
                crate::trace::wake(gid);
            }
            parked
                && q.make_ready(key, gid, Wake::stopped(why), Place::Back)
                && !std::mem::replace(&mut q.scheduled, true)
        };
        if schedule {
            self.rt.schedule(self.clone());
        }
        true
    }

    /// Stops G `gid` of slot `key` for `why` if it is still in park `gen`
    /// (a leak check's reclaim): as [`Actor::interrupt`] of a parked G.
    pub(crate) fn interrupt_park(
        self: &Arc<Self>,
        key: GKey,
        gid: u64,
        gen: u64,
        why: crate::preempt::Stop,
    ) -> bool {
        let (claimed, schedule) = {
            let mut q = self.lock();
            let q = &mut *q;
            let Some(g) = q.gs.get_mut(key).filter(|g| g.id == gid) else {
                return false;
            };
            if g.status != GStatus::Waiting || !q.words.get(key).claim(gen) {
                return false;
            }
            g.interrupted = Some(why);
            crate::trace::wake(gid);
            (
                true,
                q.make_ready(key, gid, Wake::stopped(why), Place::Back)
                    && !std::mem::replace(&mut q.scheduled, true),
            )
        };
        if schedule {
            self.rt.schedule(self.clone());
        }
        claimed
    }

    fn ready(self: &Arc<Self>, key: GKey, id: u64, wake: Wake, front: bool) {
        crate::trace::wake(id);
        if running() == self.id {
            // Woken by the actor's own M (a channel operation of the running
            // G, a timer it fires): the M applies it when it next takes the
            // queue lock, one lock per switch instead of two.
            let place = if front { Place::Front } else { Place::Next };
            DEFERRED.with_borrow_mut(|d| d.push((key, id, wake, place)));
            return;
        }
        let place = if front { Place::Front } else { Place::Back };
        let schedule = {
            let mut q = self.lock();
            q.make_ready(key, id, wake, place) && !std::mem::replace(&mut q.scheduled, true)
        };
        if schedule {
            self.rt.schedule(self.clone());
        }
    }

    /// Every G of this actor, in id order.
    pub fn goroutines(&self) -> Vec<GInfo> {
        let mut guard = self.lock();
        let q = &mut *guard;
        let keys: Vec<GKey> = q.gs.iter().map(|(k, _)| k).collect();
        let mut v: Vec<GInfo> = keys.into_iter().map(|k| q.info(k)).collect();
        drop(guard);
        v.sort_by_key(|g| g.id);
        v
    }

    /// The snapshots of the Gs of `which` (slot, id, park generation) that
    /// are still in that park; `None` for the others. One lock for all.
    pub fn parked_infos(&self, which: &[(GKey, u64, u64)]) -> Vec<Option<GInfo>> {
        let mut q = self.lock();
        which
            .iter()
            .map(|&(key, gid, gen)| q.parked_in(key, gid, gen).then(|| q.info(key)))
            .collect()
    }

    /// The runtime that runs this actor.
    pub(crate) fn runner(&self) -> &dyn Runner {
        &*self.rt
    }
}

// SAFETY: every field but `lua` is Sync. `lua` (an mlua state, itself
// Send + Sync) sits in an UnsafeCell only so that `close_state` can drop it
// in place; that happens once, on the one M that can reach the ended
// actor's state, and no other access follows (see `lua`).
unsafe impl Sync for Actor {}

impl Drop for Actor {
    fn drop(&mut self) {
        if !self.state_closed.swap(true, Ordering::AcqRel) {
            // SAFETY: `&mut self`: nothing else can use the state.
            unsafe { self.close_lua() };
            self.rt.closed(self.id);
        }
    }
}

impl SlotOwner for Actor {
    /// Lets go of `slot` of the actor's values table from any thread: the
    /// M that next runs the actor releases it (a kept value received by
    /// another actor, or dropped with its channel).
    fn release_later(&self, slot: std::ffi::c_int) {
        if !self.has_ended() {
            self.lock().released.push(slot);
        }
    }
}

impl std::fmt::Debug for Actor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "actor {}", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue() -> ActorQueue {
        ActorQueue::new()
    }

    /// A G whose thread is never resumed here (a null state is not touched).
    fn g(q: &mut ActorQueue, id: u64) -> GKey {
        q.insert(G {
            id,
            thread: LuaThread(std::ptr::null_mut()),
            thread_ref: 0,
            nstart: 0,
            status: GStatus::Runnable,
            reason: WaitReason::None,
            wake: None,
            sel_sends: None,
            interrupted: None,
            since: 0,
        })
    }

    fn run(q: &mut ActorQueue) -> Option<u64> {
        let p = q.pick()?;
        Some(p.id)
    }

    #[test]
    fn fifo_with_runnext_first() {
        let mut q = queue();
        let (a, b, c) = (g(&mut q, 1), g(&mut q, 2), g(&mut q, 3));
        q.push_back(a);
        q.push_back(b);
        q.push_runnext(c);
        assert_eq!(run(&mut q), Some(3), "runnext goes first");
        assert_eq!(run(&mut q), Some(1));
        assert_eq!(run(&mut q), Some(2));
        assert_eq!(run(&mut q), None);
    }

    #[test]
    fn a_new_runnext_kicks_the_old_one_to_the_tail() {
        let mut q = queue();
        let (a, b, c) = (g(&mut q, 1), g(&mut q, 2), g(&mut q, 3));
        q.push_back(a);
        q.push_runnext(b);
        q.push_runnext(c);
        let order: Vec<_> = std::iter::from_fn(|| run(&mut q)).collect();
        assert_eq!(order, vec![3, 1, 2]);
    }

    #[test]
    fn runnext_cannot_starve_the_queue() {
        let mut q = queue();
        let (waiting, a, b) = (g(&mut q, 1), g(&mut q, 2), g(&mut q, 3));
        q.push_back(waiting);
        // A ping-pong pair: each run readies the other into runnext.
        let mut next = a;
        let mut ran_waiting = false;
        for _ in 0..=RUNNEXT_STREAK_MAX {
            q.push_runnext(next);
            let p = q.pick().unwrap();
            if p.id == 1 {
                ran_waiting = true;
                break;
            }
            q.gs[p.key].status = GStatus::Runnable;
            next = if p.key == a { b } else { a };
        }
        assert!(
            ran_waiting,
            "the queued G ran within the runnext streak limit"
        );
    }

    #[test]
    fn picking_marks_running_and_takes_the_wake() {
        let mut q = queue();
        let a = g(&mut q, 7);
        q.gs[a].wake = Some(Wake::Unit);
        q.push_back(a);
        let p = q.pick().unwrap();
        assert!(matches!(p.wake, Some(Wake::Unit)));
        assert_eq!(q.gs[a].status, GStatus::Running);
        assert!(q.gs[a].wake.is_none());
    }
}
