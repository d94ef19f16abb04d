//! M: the schedule loop of one OS thread.
//!
//! An M serves one P. It finds a runnable actor ([`Shared::find_runnable`])
//! and runs its Gs one after another ([`Shared::run_actor`]) until the
//! actor has nothing runnable or its slice is used up while others wait.
//!
//! Resuming a G and reading what it yielded:
//!
//! | the G's thread...                         | the M...                                  |
//! |-------------------------------------------|-------------------------------------------|
//! | returned                                  | removes the G (the main G: program exits) |
//! | yielded `SCHED, KIND_PARK + reason`       | marks it `Waiting`, or re-queues it if it was woken meanwhile |
//! | yielded `SCHED, KIND_GOSCHED`             | puts it at the back of the actor's queue  |
//! | yielded `SCHED, KIND_EXIT`                | removes the G (`runtime.goexit`)          |
//! | returned `SCHED, KIND_PANIC, msg, tb`     | ends the program with a panic report      |
//! | raised an error outside the G's xpcall    | the same                                  |

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mlua::{MultiValue, Value};

use super::{dump, lock, Outcome, Shared, ACTOR_SLICE_NS, GLOBAL_QUEUE_EVERY};
use crate::actor::Actor;
use crate::g::{GKey, GStatus, WaitReason, Wake};
use crate::park;
use crate::timer::now_ns;

thread_local! {
    static CURRENT_P: Cell<usize> = const { Cell::new(usize::MAX) };
    static RUNNING_ACTOR: Cell<u64> = const { Cell::new(0) };
}

/// The P held by this thread, if it is an M.
pub(crate) fn current_p() -> Option<usize> {
    Some(CURRENT_P.get()).filter(|&p| p != usize::MAX)
}

/// Id of the actor this thread is running (0 if none).
pub fn running_actor() -> u64 {
    RUNNING_ACTOR.get()
}

/// Body of an M thread.
pub(crate) fn m_main(shared: Arc<Shared>, pid: usize) {
    CURRENT_P.set(pid);
    while let Some(actor) = shared.find_runnable(pid) {
        shared.run_actor(pid, actor);
    }
}

/// What one resume of a G came back with.
enum Resumed {
    Parked(WaitReason),
    Gosched,
    Exited,
    Panicked(String),
}

/// The first four values a G's thread yielded or returned.
type Yielded = (Value, Value, Value, Value);

fn classify(res: mlua::Result<Yielded>, gid: u64) -> Resumed {
    let (first, kind, msg, tb) = match res {
        Ok(v) => v,
        Err(e) => return Resumed::Panicked(panic_report(gid, &e.to_string(), "")),
    };
    if !park::is_sched(&first) {
        return Resumed::Exited;
    }
    let kind = match kind {
        Value::Integer(k) => k,
        _ => -1,
    };
    match kind {
        park::KIND_GOSCHED => Resumed::Gosched,
        park::KIND_EXIT => Resumed::Exited,
        park::KIND_PANIC => {
            let text = |v: Value| match v {
                Value::String(s) => s.to_string_lossy(),
                _ => String::new(),
            };
            let (msg, tb) = (text(msg), text(tb));
            Resumed::Panicked(panic_report(gid, &msg, &tb))
        }
        k if k >= park::KIND_PARK => match WaitReason::from_code(k - park::KIND_PARK) {
            Some(r) => Resumed::Parked(r),
            None => Resumed::Panicked(panic_report(gid, "lugo: bad park reason", "")),
        },
        _ => Resumed::Panicked(panic_report(gid, "lugo: bad scheduler request", "")),
    }
}

/// Go's panic report: message, blank line, the goroutine and its stack.
fn panic_report(gid: u64, msg: &str, tb: &str) -> String {
    // An error raised outside the goroutine's xpcall carries its traceback
    // in the message (mlua appends it).
    let (msg, tb) = match (tb.is_empty(), msg.split_once("\nstack traceback:\n")) {
        (true, Some((m, t))) => (m, t),
        _ => (msg, tb),
    };
    format!(
        "panic: {msg}\n\ngoroutine {gid} [running]:\n{}",
        dump::format_traceback(tb)
    )
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
            self.timers.run_due(now_ns());
            let tick = p.schedtick.load(Ordering::Relaxed);
            if tick % GLOBAL_QUEUE_EVERY == 0 {
                if let Some(a) = self.pop_global() {
                    return Some(a);
                }
            }
            if let Some(a) = p.pop().or_else(|| self.pop_global()) {
                return Some(a);
            }
            if let Some(a) = self.steal(pid) {
                return Some(a);
            }
            self.park_idle(pid, true);
        }
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

    /// Parks this M until woken; `active` Ms take part in deadlock
    /// detection and timer duty.
    fn park_idle(&self, pid: usize, active: bool) {
        let mut idle = lock(&self.idle);
        if self.stopping() || !self.global_is_empty() {
            return;
        }
        let mut timeout = None;
        if active {
            idle.nidle += 1;
            let next = self.timers.next_deadline();
            if next.is_none()
                && idle.nidle >= self.nprocs()
                && self.started_gs.load(Ordering::Acquire)
                && (0..self.nprocs()).all(|i| self.ps[i].len() == 0)
            {
                // Every M is idle, nothing is queued and no timer can wake
                // anybody: checkdead.
                idle.nidle -= 1;
                drop(idle);
                let report = self.deadlock_report();
                self.finish(Outcome::Deadlock(report));
                return;
            }
            if let Some(when) = next {
                if idle.timer_m.is_none() || idle.timer_m == Some(pid) {
                    idle.timer_m = Some(pid);
                    timeout = Some(Duration::from_nanos(when.saturating_sub(now_ns())));
                }
            }
        }
        idle.parked.push((pid, std::thread::current()));
        drop(idle);

        match timeout {
            Some(d) => std::thread::park_timeout(d),
            None => std::thread::park(),
        }

        let mut idle = lock(&self.idle);
        idle.parked.retain(|(p, _)| *p != pid);
        if active {
            idle.nidle -= 1;
            if idle.timer_m == Some(pid) {
                idle.timer_m = None;
                // Leaving timer duty: pass it to another idle M.
                if self.timers.next_deadline().is_some() {
                    if let Some((_, t)) = idle.parked.last() {
                        t.unpark();
                    }
                }
            }
        }
    }

    /// Runs `actor`'s Gs until it has none runnable or its slice is over.
    fn run_actor(&self, pid: usize, actor: Arc<Actor>) {
        RUNNING_ACTOR.set(actor.id);
        let p = &self.ps[pid];
        let start = Instant::now();
        let mut rounds: u32 = 0;
        loop {
            if self.stopping() {
                break;
            }
            let picked = {
                let mut q = actor.lock();
                if !q.tasks.is_empty() {
                    let tasks = std::mem::take(&mut q.tasks);
                    drop(q);
                    self.run_tasks(&actor, tasks);
                    continue;
                }
                match q.pick() {
                    Some((key, thread, wake)) => (key, q.gs[key].id, thread, wake),
                    None => {
                        q.scheduled = false;
                        break;
                    }
                }
            };
            let (key, gid, thread, wake) = picked;
            p.schedtick.fetch_add(1, Ordering::Relaxed);
            actor.set_current(key, gid);
            let res = resume(&actor, &thread, wake);
            drop(thread);
            match classify(res, gid) {
                Resumed::Parked(reason) => {
                    let mut q = actor.lock();
                    let g = &mut q.gs[key];
                    if g.wake.is_some() {
                        g.status = GStatus::Runnable;
                        q.push_back(key);
                    } else {
                        g.status = GStatus::Waiting;
                        g.reason = reason;
                    }
                }
                Resumed::Gosched => {
                    let mut q = actor.lock();
                    q.gs[key].status = GStatus::Runnable;
                    q.push_back(key);
                }
                Resumed::Exited => self.g_exit(&actor, key, gid),
                Resumed::Panicked(report) => {
                    self.finish(Outcome::Panic(report));
                    break;
                }
            }
            actor.set_current(usize::MAX, 0);

            if let Some(when) = self.timers.next_deadline() {
                let now = now_ns();
                if now >= when {
                    self.timers.run_due(now);
                }
            }
            rounds = rounds.wrapping_add(1);
            if rounds % 16 == 0
                && start.elapsed() > Duration::from_nanos(ACTOR_SLICE_NS)
                && (p.len() > 0 || !self.global_is_empty())
            {
                // Slice used up while other actors wait: to the back.
                let overflow = p.push(actor.clone());
                lock(&self.global).extend(overflow);
                break;
            }
        }
        RUNNING_ACTOR.set(0);
    }

    fn run_tasks(&self, actor: &Arc<Actor>, tasks: Vec<u64>) {
        let Some(f) = actor.task_fn() else { return };
        for id in tasks {
            if let Err(e) = f.call::<()>(id) {
                self.finish(Outcome::Panic(panic_report(0, &e.to_string(), "")));
                return;
            }
        }
    }

    fn g_exit(&self, actor: &Arc<Actor>, key: GKey, gid: u64) {
        let g = actor.lock().gs.remove(key);
        drop(g);
        self.ngoroutines.fetch_sub(1, Ordering::AcqRel);
        if actor.id == 1 && gid == 1 {
            self.finish(Outcome::Exit(0));
        }
    }
}

/// Resumes `thread` with the results `wake` describes.
fn resume(actor: &Actor, thread: &mlua::Thread, wake: Option<Wake>) -> mlua::Result<Yielded> {
    let lua = actor.lua();
    match wake {
        None | Some(Wake::Unit) => thread.resume(()),
        Some(Wake::Start(args)) => thread.resume(MultiValue::from_vec(args)),
        Some(Wake::Recv(m, ok)) => thread.resume((m.into_value(lua)?, ok)),
        Some(Wake::Select { case, recv: None }) => thread.resume(case),
        Some(Wake::Select {
            case,
            recv: Some((m, ok)),
        }) => thread.resume((case, m.into_value(lua)?, ok)),
        Some(Wake::Fail(msg)) => thread.resume((park::err(), msg)),
    }
}
