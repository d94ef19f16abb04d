//! Leaked goroutines: one actor's side of a leak check (the probe), and
//! the bookkeeping it needs. A parked goroutine is *leaked* when nothing
//! that can still run can ever wake it (Go 1.26's leak profile, extended
//! to actors); the runtime joins the actors' probes
//! ([`lugo_sysmon::leaks`], sysmon's gc-arena heap) and decides.
//!
//! # The probe: Lua's own collector decides reachability
//!
//! A probe is one collection cycle of the actor's heap with the vendored
//! collector's leak probe (`vendor/lua-src/LUGO.md`), run by the actor's M
//! in steps between its goroutines' turns ([`probe`], [`Probe::step`]):
//!
//! 1. The *suspects* are the actor's goroutines parked on a channel
//!    (send, receive, select) or a lock (mutex, wait group, semaphore).
//!    What each waits on is read from its stack: the boxes among the
//!    arguments of the C function it parked in (a select's cases: the
//!    boxes in them), following a parked coroutine of its own down.
//! 2. The runtime lets go of each suspect's thread for this one cycle (its
//!    registry slot holds `false`) and keeps it only (a) in the probe,
//!    which no root reaches until the marking is done, and (b) in an
//!    ephemeron keyed by *every* box of every object it waits on (an actor
//!    may hold several boxes of one channel: each copy that crossed a
//!    channel is one). An ephemeron's value is marked only once its key
//!    is, so a suspect's thread is marked exactly when one of those boxes
//!    is reachable from the roots: the registry and globals, the threads
//!    of the goroutines that can run, pending Lua finalizers, and, in
//!    turn, every suspect so revived (Lua converges the ephemerons).
//! 3. When the marking is done (the cycle's atomic phase) the collector
//!    records, for each suspect, whether its thread is marked (*reached*),
//!    and for each box of a shared object the actor holds whether it is
//!    marked; then it marks the probe, so the suspects and all they hold
//!    survive unchanged. The runtime puts back in its registry slot the
//!    thread of each suspect still alive (one woken meanwhile may have
//!    ended, and its slot gone to another goroutine).
//!
//! Between the steps the actor's goroutines run, suspects woken among
//! them: a suspect's thread lives in the probe until the atomic phase
//! (no sweep comes before it), and its verdict is dropped if its park
//! changed. A collection asked meanwhile (`collectgarbage()`, sysmon's)
//! finishes the probe's cycle sooner; a second check waits its turn.
//!
//! Why it finds no false leak in the actor: a suspect left unmarked is
//! reachable from no root, and every way to wake it goes through a box of
//! what it waits on (an operation on that object) or through its id
//! (`runtime.interrupt`, which never counts as a wake-up here). A box that
//! no root reaches can be reached again only by Lua code that holds it
//! (none: it is unreachable) or by the runtime handing the object out
//! anew. The ephemeron knows only the boxes there were when the probe
//! began, and the actor's goroutines run until its atomic phase: so every
//! hand-out by the actor's code during that window (a new box: `note_box`;
//! a copy of the object into a value in flight, a context kept by a socket
//! or a child: `note_handout`) marks the object *touched*, reached, with
//! all its waiters; program-wide, every hand-out counts in [`handouts`],
//! and the check trusts no verdict on an object shared across actors that
//! was handed out while it ran. Weak references count as strong in such a
//! cycle (a script may still read a weak table), and so does anything a
//! pending finalizer written in Lua holds (it may run later and wake
//! someone). A goroutine woken while the check ran is dropped from its
//! verdict (its park's generation changed).
//!
//! What the probe reports of each object, besides reachability: its
//! strong count and the actor's boxes of it, read while the boxes are
//! held: a count above the boxes of all actors means a holder outside
//! every Lua heap (the host, a timer, a value in flight), which keeps the
//! object live.

use std::ffi::{c_int, c_void};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use mlua::ffi;

use crate::actor::Actor;
use crate::ffi::{protect, LuaThread, SharedOf};
use crate::g::{GKey, GStatus};
use crate::wake::WaitReason;

unsafe extern "C-unwind" {
    /// Starts a leak check's cycle (the vendored Lua's lapi.c): pops the
    /// probe; 0 (the probe left on the stack) if none can start.
    fn lugo_leakbegin(l: *mut ffi::lua_State, weakmt: c_int) -> c_int;
    /// One step of that cycle; 1 once its atomic phase is done (the probe
    /// pushed back, its flags set).
    fn lugo_leakstep(l: *mut ffi::lua_State) -> c_int;
}

/// Hand-outs of shared objects so far, program-wide (see the module
/// comment).
static HANDOUTS: AtomicU64 = AtomicU64::new(0);

/// Counts a hand-out of shared object `id` by `actor`'s code (a copy of
/// it into a value in flight, a reference kept by a socket or a child
/// context), and notes it as touched if a probe of the actor is under way.
/// Inert: no Lua call (a copy is made under a channel's lock).
pub fn note_handout(actor: &Actor, id: usize) {
    HANDOUTS.fetch_add(1, Ordering::Relaxed);
    if actor.probing.load(Ordering::Acquire) {
        actor.touched.lock().push(id);
    }
}

/// Hand-outs so far: a check compares the count at its start and end.
pub fn handouts() -> u64 {
    HANDOUTS.load(Ordering::Acquire)
}

/// Registry keys (their addresses): the actor's table of boxes of shared
/// objects, the metatable of the runtime's weak tables, a probe's
/// ephemeron.
static BOXES_KEY: u8 = 0;
static WEAK_MT_KEY: u8 = 0;
static EPHEMERON_KEY: u8 = 0;
/// The boxes made while a probe is under way (present only then).
static FRESH_KEY: u8 = 0;

fn key(k: &'static u8) -> *const c_void {
    k as *const u8 as *const c_void
}

/// Pushes the metatable of the runtime's weak-keyed tables (the ones that
/// stay weak in a probe), made at first use.
///
/// # Safety
/// `l` is a valid thread with 3 free slots; allocates (may raise).
unsafe fn push_weak_mt(l: *mut ffi::lua_State) {
    // SAFETY: the contract; registry reads and writes of a light key.
    unsafe {
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key(&WEAK_MT_KEY)) == ffi::LUA_TTABLE {
            return;
        }
        ffi::lua_pop(l, 1);
        ffi::lua_createtable(l, 0, 2);
        ffi::lua_pushstring(l, c"k".as_ptr());
        ffi::lua_setfield(l, -2, c"__mode".as_ptr());
        ffi::lua_pushboolean(l, 0);
        ffi::lua_setfield(l, -2, c"__metatable".as_ptr());
        ffi::lua_pushvalue(l, -1);
        ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&WEAK_MT_KEY));
    }
}

/// Pushes a new table with room for `n` keys that stays weak-keyed in a
/// probe.
///
/// # Safety
/// As [`push_weak_mt`].
unsafe fn push_weak_table(l: *mut ffi::lua_State, n: c_int) {
    // SAFETY: the contract.
    unsafe {
        ffi::lua_createtable(l, 0, n);
        push_weak_mt(l);
        ffi::lua_setmetatable(l, -2);
    }
}

/// Registers the box on top of `l`'s stack, a new box of a shared object
/// (a channel, a lock, a context), in its actor's table of boxes, and
/// counts the hand-out. The stack is left as it was.
///
/// # Safety
/// `l` is a valid thread of a lugo actor with the box on top and 4 free
/// slots; allocates (may raise: the box is then garbage, and the hand-out
/// counted, which only makes a check more careful).
pub unsafe fn note_box(l: *mut ffi::lua_State) {
    HANDOUTS.fetch_add(1, Ordering::Relaxed);
    // SAFETY: the contract; registry reads and writes of light keys, raw
    // sets in tables of ours.
    unsafe {
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key(&BOXES_KEY)) != ffi::LUA_TTABLE {
            ffi::lua_pop(l, 1);
            push_weak_table(l, 0);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&BOXES_KEY));
        }
        ffi::lua_pushvalue(l, -2);
        ffi::lua_pushboolean(l, 1);
        ffi::lua_rawset(l, -3);
        ffi::lua_pop(l, 1);
        // While a probe is under way its object counts as touched (the
        // probe knows only the boxes there were when it began).
        if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key(&FRESH_KEY)) == ffi::LUA_TTABLE {
            ffi::lua_pushvalue(l, -2);
            ffi::lua_pushboolean(l, 1);
            ffi::lua_rawset(l, -3);
        }
        ffi::lua_pop(l, 1);
    }
}

/// A shared object as one probe saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Object {
    /// Its address (stable while any box of it lives).
    pub id: usize,
    /// Its strong count, read while the probe held the actor's boxes.
    pub strong: usize,
    /// The actor's live boxes of it.
    pub boxes: usize,
    /// Whether one of those boxes is reachable from the actor's roots.
    pub reached: bool,
}

/// A suspect as one probe saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suspect {
    /// The goroutine's id.
    pub gid: u64,
    /// Its slot, and its park's generation when the probe began: a
    /// verdict holds only while both are unchanged.
    pub key: GKey,
    /// See `key`.
    pub gen: u64,
    /// Why it waits.
    pub reason: WaitReason,
    /// Its thread was marked: reachable from the actor's roots.
    pub reached: bool,
    /// The objects it waits on.
    pub waits_on: Vec<usize>,
}

/// One actor's probe.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The actor's id.
    pub actor: u64,
    /// It has a goroutine that runs or can run without any object's help
    /// (runnable, sleeping, in a socket wait or a blocking call, waiting
    /// for an actor, parked on something the probe cannot read), a pending
    /// timer or task, or it is the host's: its roots are live.
    pub can_run: bool,
    /// The shared objects its heap holds.
    pub objects: Vec<Object>,
    /// Its suspects.
    pub suspects: Vec<Suspect>,
}

/// What the probe needs of a parked G.
struct Parked {
    key: GKey,
    gid: u64,
    thread: LuaThread,
    thread_ref: c_int,
    gen: u64,
    reason: WaitReason,
}

/// Whether a G parked for `reason` is a suspect: it waits on an object
/// only (a sleep, a socket, an actor, `select()` with no case are not).
pub fn is_suspect_reason(reason: WaitReason) -> bool {
    matches!(
        reason,
        WaitReason::ChanReceive
            | WaitReason::ChanSend
            | WaitReason::Select
            | WaitReason::Semacquire
    )
}

/// Whether a G parked for `reason` makes its actor able to run by itself
/// (something outside the objects will wake it).
fn wakes_by_itself(reason: WaitReason) -> bool {
    !is_suspect_reason(reason) && reason != WaitReason::SelectNoCases
}

/// A probe under way: its collection cycle runs in steps, between the
/// actor's goroutines' turns ([`Probe::step`]).
pub struct Probe {
    report: Report,
    shared_of: SharedOf,
    parked: Vec<Parked>,
    waits: Vec<Vec<usize>>,
    /// The boxes in the probe, in order: their object and strong count.
    boxes: Vec<(usize, usize)>,
    /// Its cycle has begun (the suspects were read on an earlier turn).
    begun: bool,
}

/// Where a probe is.
pub enum Probed {
    /// Done: the actor's report.
    Done(Report),
    /// Its cycle goes on: step it again on a later turn.
    Going(Probe),
}

/// Starts the actor's probe (see the module comment), with its state held
/// and no G of it running: by its M between turns (`l` its main thread).
/// `host`: the host may call into the actor (its roots are live whatever
/// runs); `roots`: goroutines to take as roots, not suspects (an earlier
/// round found them woken from outside); `shared_of`: the face's reader
/// of boxes.
///
/// # Safety
/// `l` is a thread of `actor`'s state, held by the calling thread, not a
/// parked G's.
pub unsafe fn probe(
    actor: &Arc<Actor>,
    l: *mut ffi::lua_State,
    host: bool,
    roots: &[u64],
    shared_of: SharedOf,
) -> Probed {
    let mut report = Report {
        actor: actor.id,
        can_run: host || actor.timers.load(Ordering::Acquire) > 0 || actor.blocking_gid() != 0,
        ..Report::default()
    };
    let roots: rustc_hash::FxHashSet<u64> = roots.iter().copied().collect();
    let mut parked = Vec::new();
    {
        let mut q = actor.lock();
        report.can_run |= !q.tasks.is_empty();
        let keys: Vec<GKey> = q.gs.iter().map(|(k, _)| k).collect();
        for k in keys {
            let gen = q.words.get(k).open_gen();
            let g = &q.gs[k];
            match g.status {
                // Woken, as far as the check knows (`roots`): it can run.
                GStatus::Waiting if roots.contains(&g.id) => report.can_run = true,
                GStatus::Waiting if is_suspect_reason(g.reason) => parked.push(Parked {
                    key: k,
                    gid: g.id,
                    thread: g.thread,
                    thread_ref: g.thread_ref,
                    gen,
                    reason: g.reason,
                }),
                GStatus::Waiting if !wakes_by_itself(g.reason) => {}
                _ => report.can_run = true,
            }
        }
    }
    // What each suspect waits on, read from its stack.
    let mut waits: Vec<Vec<usize>> = Vec::with_capacity(parked.len());
    for p in &parked {
        // SAFETY: `p.thread` is a parked G's thread of this state (held).
        waits.push(unsafe { waits_of(l, p.thread, shared_of) });
    }
    // A suspect whose wait the probe cannot read may be woken by what it
    // does not see: it counts as one that can run.
    let mut i = 0;
    while i < parked.len() {
        if waits[i].is_empty() {
            report.can_run = true;
            parked.swap_remove(i);
            waits.swap_remove(i);
        } else {
            i += 1;
        }
    }
    // The cycle begins on the next turn: a piece of work each.
    Probed::Going(Probe {
        report,
        shared_of,
        parked,
        waits,
        boxes: Vec::new(),
        begun: false,
    })
}

impl Probe {
    /// Begins the probe's cycle, on the turn after its suspects were
    /// read: a suspect no longer in the park it was read in (woken, or
    /// ended) is dropped, and its actor counts as one that can run.
    ///
    /// # Safety
    /// As [`Probe::step`].
    unsafe fn begin(mut self, actor: &Arc<Actor>, l: *mut ffi::lua_State) -> Probed {
        let mut i = 0;
        while i < self.parked.len() {
            let p = &self.parked[i];
            if actor.still_parked(p.key, p.gid, p.gen) {
                i += 1;
            } else {
                self.report.can_run = true;
                self.parked.swap_remove(i);
                self.waits.swap_remove(i);
            }
        }
        // One probe of an actor at a time: its window notes what the
        // actor hands out (`note_handout`, `note_box`).
        if actor
            .probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            self.report.can_run = true;
            self.parked.clear();
            return Probed::Done(self.report);
        }
        actor.touched.lock().clear();
        // SAFETY: `l` is a thread of the held state (the contract); the
        // suspects' threads are parked (checked just above).
        match unsafe { begin(l, &self.parked, &self.waits, self.shared_of) } {
            Some(boxes) => {
                self.boxes = boxes;
                self.begun = true;
                Probed::Going(self)
            }
            None => {
                // No cycle could start: trust nothing.
                actor.probing.store(false, Ordering::Release);
                self.report.can_run = true;
                self.report.suspects.clear();
                Probed::Done(self.report)
            }
        }
    }

    /// Runs the probe's cycle for about `budget`, with the actor's state
    /// held and no G of it running (as [`probe`]).
    ///
    /// # Safety
    /// As [`probe`]; `actor` is the actor this probe started on.
    pub unsafe fn step(
        mut self,
        actor: &Arc<Actor>,
        l: *mut ffi::lua_State,
        budget: std::time::Duration,
    ) -> Probed {
        if !self.begun {
            // SAFETY: the contract.
            return unsafe { self.begin(actor, l) };
        }
        // The suspects still alive in their slots (a woken one may have
        // ended meanwhile, and its slot gone to another G): only theirs
        // get their thread back.
        let alive: Vec<bool> = {
            let q = actor.lock();
            self.parked
                .iter()
                .map(|p| q.gs.get(p.key).is_some_and(|g| g.id == p.gid))
                .collect()
        };
        let mut flags = Flags::default();
        // SAFETY: the contract.
        let done = unsafe {
            run_steps(
                l,
                &self.parked,
                &alive,
                &self.boxes,
                self.shared_of,
                budget,
                &mut flags,
            )
        };
        if !done {
            return Probed::Going(self);
        }
        // What the actor handed out during the window (new boxes, copies
        // of values in flight) is touched: reachable, as are its waiters.
        let mut touched = std::mem::take(&mut *actor.touched.lock());
        actor.probing.store(false, Ordering::Release);
        touched.append(&mut flags.fresh);
        touched.sort_unstable();
        touched.dedup();
        // One object per run of its boxes (sorted in place: no map).
        flags.boxes.sort_unstable_by_key(|&(id, _, _)| id);
        let mut objects: Vec<Object> = Vec::with_capacity(flags.boxes.len());
        for (id, strong, marked) in flags.boxes {
            match objects.last_mut() {
                Some(o) if o.id == id => {
                    o.boxes += 1;
                    o.strong = o.strong.max(strong);
                    o.reached |= marked;
                }
                _ => objects.push(Object {
                    id,
                    strong,
                    boxes: 1,
                    reached: marked,
                }),
            }
        }
        for &id in &touched {
            match objects.iter_mut().find(|o| o.id == id) {
                Some(o) => o.reached = true,
                // No box of it when the probe began: held from outside,
                // as far as the check knows.
                None => objects.push(Object {
                    id,
                    strong: usize::MAX,
                    boxes: 0,
                    reached: true,
                }),
            }
        }
        self.report.objects = objects;
        self.report.suspects = self
            .parked
            .into_iter()
            .zip(self.waits)
            .zip(flags.threads)
            .map(|((p, waits_on), reached)| Suspect {
                gid: p.gid,
                key: p.key,
                gen: p.gen,
                reason: p.reason,
                reached: reached || waits_on.iter().any(|id| touched.binary_search(id).is_ok()),
                waits_on,
            })
            .collect();
        Probed::Done(self.report)
    }
}

/// What the collector recorded.
#[derive(Default)]
struct Flags {
    /// Per suspect: its thread was marked.
    threads: Vec<bool>,
    /// Per box of a shared object: (object, strong count, marked).
    boxes: Vec<(usize, usize, bool)>,
    /// The objects of the boxes made during the probe's window.
    fresh: Vec<usize>,
}

/// The objects the G parked on `th` waits on: the shared objects among
/// the arguments of the C function it parked in, one level into tables
/// (a select's cases), following a coroutine of its own that parked (an
/// argument of that C function, `coroutine.resume`'s, or an upvalue of
/// it, `coroutine.wrap`'s function's).
///
/// # Safety
/// `l` is a thread of the state of `th`, a parked G's thread.
unsafe fn waits_of(l: *mut ffi::lua_State, th: LuaThread, shared_of: SharedOf) -> Vec<usize> {
    let mut out = Vec::new();
    // SAFETY: the contract. Inside `protect` (a raise is caught; `out` is
    // outside it): stack reads of a parked thread, each value moved to `l`
    // and popped; `shared_of` reads a box (inert).
    unsafe {
        let top = ffi::lua_gettop(l);
        let out_ref = &mut out;
        let _ = protect(l, 0, move |l| {
            let mut th = th.0;
            for _ in 0..8 {
                if ffi::lua_checkstack(th, 2) == 0 || ffi::lua_checkstack(l, 6) == 0 {
                    return 0;
                }
                let mut ar: ffi::lua_Debug = std::mem::zeroed();
                if ffi::lua_getstack(th, 0, &mut ar) == 0
                    || ffi::lua_getinfo(th, c"S".as_ptr(), &mut ar) == 0
                    || std::ffi::CStr::from_ptr(ar.what).to_bytes() != b"C"
                {
                    return 0;
                }
                let mut inner: *mut ffi::lua_State = std::ptr::null_mut();
                let mut n = 1;
                while n <= 16 && !ffi::lua_getlocal(th, &ar, n).is_null() {
                    ffi::lua_xmove(th, l, 1);
                    match ffi::lua_type(l, -1) {
                        ffi::LUA_TUSERDATA => {
                            if let Some((id, _)) = shared_of(l, -1) {
                                out_ref.push(id);
                            }
                        }
                        ffi::LUA_TTABLE => {
                            // A select's case: `{"recv", ch}`, `{"send", ch, v}`.
                            ffi::lua_rawgeti(l, -1, 2);
                            if ffi::lua_type(l, -1) == ffi::LUA_TUSERDATA {
                                if let Some((id, _)) = shared_of(l, -1) {
                                    out_ref.push(id);
                                }
                            }
                            ffi::lua_pop(l, 1);
                        }
                        ffi::LUA_TTHREAD if inner.is_null() => inner = ffi::lua_tothread(l, -1),
                        _ => {}
                    }
                    ffi::lua_pop(l, 1);
                    n += 1;
                }
                if out_ref.is_empty() && inner.is_null() {
                    // `coroutine.wrap`'s function keeps its coroutine as an
                    // upvalue.
                    if ffi::lua_getinfo(th, c"f".as_ptr(), &mut ar) != 0 {
                        ffi::lua_xmove(th, l, 1);
                        let mut u = 1;
                        while u <= 4 && !ffi::lua_getupvalue(l, -1, u).is_null() {
                            if ffi::lua_type(l, -1) == ffi::LUA_TTHREAD && inner.is_null() {
                                inner = ffi::lua_tothread(l, -1);
                            }
                            ffi::lua_pop(l, 1);
                            u += 1;
                        }
                        ffi::lua_pop(l, 1);
                    }
                }
                if !out_ref.is_empty() || inner.is_null() || inner == th {
                    return 0;
                }
                // A coroutine of the G's own that parked (its resume is
                // the frame the G parked in): what it waits on.
                th = inner;
            }
            0
        });
        ffi::lua_settop(l, top);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Builds the probe and starts its cycle: the probe table (the suspects'
/// threads, the boxes, a flag for each), the ephemeron of what each waits
/// on (anchored for the cycle), then lets go of the suspects' registry
/// slots. Returns the boxes in the probe (object, strong count), or
/// `None` if no cycle could start (everything undone).
///
/// # Safety
/// As [`probe`]; `parked` are parked Gs of the state, `waits` theirs.
unsafe fn begin(
    l: *mut ffi::lua_State,
    parked: &[Parked],
    waits: &[Vec<usize>],
    shared_of: SharedOf,
) -> Option<Vec<(usize, usize)>> {
    // Which suspects wait on each object; each object's list of their
    // threads (its key in the probe); the boxes seen. Made out here: a
    // raise inside the protected call skips no destructor.
    // (object, suspect) pairs in object order: one allocation, however
    // many suspects (a map of lists would be one per object).
    let mut pairs: Vec<(usize, usize)> = waits
        .iter()
        .enumerate()
        .flat_map(|(i, w)| w.iter().map(move |&id| (id, i)))
        .collect();
    pairs.sort_unstable();
    let pairs = &pairs[..];
    // The suspects waiting on object `id`.
    let waiters = move |id: usize| {
        let from = pairs.partition_point(|&(o, _)| o < id);
        let to = pairs.partition_point(|&(o, _)| o <= id);
        &pairs[from..to]
    };
    let mut lists: rustc_hash::FxHashMap<usize, ffi::lua_Integer> = Default::default();
    let lists = &mut lists;
    let mut ids: Vec<(usize, usize)> = Vec::new();
    let ids_ref = &mut ids;
    let mut began = false;
    let began_ref = &mut began;
    let mut paused = false;
    let paused_ref = &mut paused;
    // SAFETY: the contract. Inside `protect` (a raise is caught; what the
    // closure writes lives outside it). Everything that allocates is done
    // before `lugo_leakbegin`; a suspect's registry slot is let go of only
    // once the cycle has begun (raw sets of existing keys: they allocate
    // nothing), and [`run_steps`] puts it back.
    unsafe {
        let top = ffi::lua_gettop(l);
        let _ = protect(l, 0, move |l| {
            if ffi::lua_checkstack(l, 12) == 0 {
                return 0;
            }
            // No collection steps while the probe is built (its cycle
            // starts anew below: work on the one under way is wasted); a
            // collector the script stopped stays stopped.
            *paused_ref = ffi::lua_gc(l, ffi::LUA_GCISRUNNING, 0) != 0;
            ffi::lua_gc(l, ffi::LUA_GCSTOP, 0);
            // The probe's window opens: boxes made from now on are noted
            // (`note_box`).
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&FRESH_KEY));
            let n = parked.len() as c_int;
            // probe = {threads, flags, boxes, flags}: base+1 .. base+5.
            let base = ffi::lua_gettop(l);
            ffi::lua_createtable(l, 4, 0); // base+1: probe
            ffi::lua_createtable(l, n, 0); // base+2: threads
            ffi::lua_createtable(l, n, 0); // base+3: their flags
            for (i, p) in parked.iter().enumerate() {
                ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, p.thread_ref.into());
                ffi::lua_rawseti(l, base + 2, i as ffi::lua_Integer + 1);
                ffi::lua_pushboolean(l, 0);
                ffi::lua_rawseti(l, base + 3, i as ffi::lua_Integer + 1);
            }
            // Sized at once (a table grown one rehash at a time costs a
            // multiple of the work): how many boxes there are.
            let mut nboxes: c_int = 0;
            if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key(&BOXES_KEY)) == ffi::LUA_TTABLE {
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, -2) != 0 {
                    ffi::lua_pop(l, 1);
                    nboxes += 1;
                }
            }
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, nboxes, 0); // base+4: boxes
            ffi::lua_createtable(l, nboxes, 0); // base+5: their flags
            push_weak_table(l, nboxes.min(n)); // base+6: the ephemeron
            push_weak_mt(l); // base+7
                             // The ephemeron, anchored for the cycle (it must be traversed
                             // as one): every box of an object a suspect waits on keys the
                             // list of those suspects' threads (or the one's thread).
            ffi::lua_pushvalue(l, base + 6);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&EPHEMERON_KEY));
            if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key(&BOXES_KEY)) == ffi::LUA_TTABLE {
                let boxes = ffi::lua_gettop(l);
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, boxes) != 0 {
                    ffi::lua_pop(l, 1); // the value; the box stays as the key
                    let Some((id, strong)) = shared_of(l, -1) else {
                        continue; // collected already (its finalizer ran)
                    };
                    ids_ref.push((id, strong));
                    ffi::lua_pushvalue(l, -1);
                    ffi::lua_rawseti(l, base + 4, ids_ref.len() as ffi::lua_Integer);
                    ffi::lua_pushboolean(l, 0);
                    ffi::lua_rawseti(l, base + 5, ids_ref.len() as ffi::lua_Integer);
                    let ws = waiters(id);
                    if ws.is_empty() {
                        continue;
                    }
                    ffi::lua_pushvalue(l, -1); // the box
                    if let [(_, i)] = ws[..] {
                        // One waiter (the common case): its thread itself.
                        ffi::lua_rawgeti(l, base + 2, i as ffi::lua_Integer + 1);
                    } else {
                        // The object's list, made once, kept in the probe's
                        // hash part under a key of its own (0, -1, ...):
                        // anchored, outside the four arrays the collector
                        // reads.
                        let slot = match lists.get(&id) {
                            Some(&s) => s,
                            None => {
                                let s = -(lists.len() as ffi::lua_Integer);
                                ffi::lua_createtable(l, ws.len() as c_int, 0);
                                for (j, &(_, i)) in ws.iter().enumerate() {
                                    ffi::lua_rawgeti(l, base + 2, i as ffi::lua_Integer + 1);
                                    ffi::lua_rawseti(l, -2, j as ffi::lua_Integer + 1);
                                }
                                ffi::lua_rawseti(l, base + 1, s);
                                lists.insert(id, s);
                                s
                            }
                        };
                        ffi::lua_rawgeti(l, base + 1, slot);
                    }
                    ffi::lua_rawset(l, base + 6);
                }
                ffi::lua_pop(l, 1); // boxes
            }
            for i in 0..4 {
                ffi::lua_pushvalue(l, base + 2 + i);
                ffi::lua_rawseti(l, base + 1, (i + 1).into());
            }
            // Nothing on this stack may reach the probe during its cycle:
            // only the copy `lugo_leakbegin` pops.
            ffi::lua_pushvalue(l, base + 1);
            for i in 1..=5 {
                ffi::lua_pushnil(l);
                ffi::lua_replace(l, base + i);
            }
            if lugo_leakbegin(l, base + 7) == 0 {
                // The probe is back on top: nothing was let go of.
                ffi::lua_pushnil(l);
                ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&EPHEMERON_KEY));
                ffi::lua_pushnil(l);
                ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&FRESH_KEY));
                return 0;
            }
            *began_ref = true;
            // Let go of the suspects' threads: the probe holds them.
            for p in parked {
                ffi::lua_pushboolean(l, 0);
                ffi::lua_rawseti(l, ffi::LUA_REGISTRYINDEX, p.thread_ref.into());
            }
            0
        });
        if paused {
            // Whatever happened above (a raise too): the collector runs
            // again.
            ffi::lua_gc(l, ffi::LUA_GCRESTART, 0);
        }
        if !began {
            // Raw set of an existing key (or of nothing): no allocation.
            ffi::lua_pushnil(l);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&FRESH_KEY));
        }
        ffi::lua_settop(l, top);
    }
    began.then_some(ids)
}

/// Runs the probe's cycle in steps for about `budget`; once its atomic
/// phase is done, puts the threads of the suspects still `alive` back in
/// their registry slots and reads the flags. True when done.
///
/// # Safety
/// As [`probe`], with the cycle of [`begin`] under way for `parked`.
unsafe fn run_steps(
    l: *mut ffi::lua_State,
    parked: &[Parked],
    alive: &[bool],
    boxes: &[(usize, usize)],
    shared_of: SharedOf,
    budget: std::time::Duration,
    flags: &mut Flags,
) -> bool {
    let start = std::time::Instant::now();
    let mut done = false;
    let done_ref = &mut done;
    let flags_ref = &mut *flags;
    // SAFETY: the contract. Inside `protect`; a step may run finalizers
    // (their errors are warnings: nothing is raised here); the rest are
    // raw reads, and raw sets of existing registry keys (no allocation),
    // so once the probe is back every living suspect gets its thread back.
    unsafe {
        let top = ffi::lua_gettop(l);
        let _ = protect(l, 0, move |l| {
            if ffi::lua_checkstack(l, 8) == 0 {
                return 0;
            }
            while lugo_leakstep(l) == 0 {
                if start.elapsed() >= budget {
                    return 0;
                }
            }
            *done_ref = true;
            let probe = ffi::lua_gettop(l);
            for i in 1..=4 {
                ffi::lua_rawgeti(l, probe, i);
            }
            let (threads, tflags, bflags) = (probe + 1, probe + 2, probe + 4);
            for (i, p) in parked.iter().enumerate() {
                if alive[i] {
                    ffi::lua_rawgeti(l, threads, i as ffi::lua_Integer + 1);
                    ffi::lua_rawseti(l, ffi::LUA_REGISTRYINDEX, p.thread_ref.into());
                }
            }
            let flag = |l: *mut ffi::lua_State, t: c_int, i: usize| {
                ffi::lua_rawgeti(l, t, i as ffi::lua_Integer + 1);
                let b = ffi::lua_toboolean(l, -1) != 0;
                ffi::lua_pop(l, 1);
                b
            };
            flags_ref.threads = (0..parked.len()).map(|i| flag(l, tflags, i)).collect();
            flags_ref.boxes = boxes
                .iter()
                .enumerate()
                .map(|(i, &(id, strong))| (id, strong, flag(l, bflags, i)))
                .collect();
            ffi::lua_pushnil(l);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&EPHEMERON_KEY));
            // The boxes made during the window: their objects are touched.
            if ffi::lua_rawgetp(l, ffi::LUA_REGISTRYINDEX, key(&FRESH_KEY)) == ffi::LUA_TTABLE {
                let fresh = ffi::lua_gettop(l);
                ffi::lua_pushnil(l);
                while ffi::lua_next(l, fresh) != 0 {
                    ffi::lua_pop(l, 1);
                    if let Some((id, _)) = shared_of(l, -1) {
                        flags_ref.fresh.push(id);
                    }
                }
            }
            ffi::lua_pushnil(l);
            ffi::lua_rawsetp(l, ffi::LUA_REGISTRYINDEX, key(&FRESH_KEY));
            0
        });
        ffi::lua_settop(l, top);
    }
    done
}
