//! The host: what an embedding program waits on and holds.
//!
//! A runtime built by the `lugo` crate outlives its goroutines: the host
//! starts goroutines and waits for them ([`HostTask`]), waits for actors
//! to end ([`crate::sched::Runtime::wait_actor`]), blocks on channels
//! from its own threads ([`HostPark`]) and holds channel endpoints
//! ([`crate::endpoint`]). The deadlock check must know about all of them:
//!
//! | the host...                         | checkdead, when every M is idle            |
//! |-------------------------------------|--------------------------------------------|
//! | waits for a task (a goroutine) or an actor | fails every waiting task with the report; the runtime goes on |
//! | holds a channel endpoint            | reports nothing: the host may still send or receive (but `shutdown` still ends once no goroutine is left) |
//! | waits in `shutdown` (wait mode)     | ends the runtime: `Exit(0)` if no goroutine is left, else the deadlock |
//! | does none of these                  | reports nothing: the host may start more work |
//!
//! Invariants:
//! 1. A task is in `tasks` from before its goroutine first runs (it is
//!    registered under the actor's state lock) until it has an end; its
//!    end is set once (the first end wins).
//! 2. A host waiter in a channel queue always carries a select token, so
//!    a host that gives up (a timeout) claims it and no value is handed
//!    to a waiter nobody reads.
//! 3. When the runtime stops, every task and parked host is woken.
//! 4. A host thread waiting for an actor waits on a task of its own, with
//!    no goroutine, in `actor_waits` while it waits: the actor's end (its
//!    state closed), a deadlock or the stop ends it, the first end winning.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Weak};
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::actor::Actor;
use crate::chan::HostPark;
use crate::lockrank::{Guard, Lock, Rank};

/// How the program ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The main goroutine returned (0) or the program asked for a status.
    Exit(i32),
    /// An uncaught error: the full `panic: ...` report.
    Panic(String),
    /// Every goroutine is blocked: the full `fatal error: ...` report.
    Deadlock(String),
}

impl Outcome {
    /// The process exit status (Go's: 2 for panics and deadlocks).
    pub fn code(&self) -> i32 {
        match self {
            Outcome::Exit(c) => *c,
            Outcome::Panic(_) | Outcome::Deadlock(_) => 2,
        }
    }

    /// What to print on stderr, if anything.
    pub fn report(&self) -> Option<&str> {
        match self {
            Outcome::Exit(_) => None,
            Outcome::Panic(s) | Outcome::Deadlock(s) => Some(s),
        }
    }
}

/// How a task (a goroutine the host waits for) ended.
#[derive(Clone, Debug)]
pub enum TaskEnd {
    /// It returned these values.
    Returned(mlua::MultiValue),
    /// It raised an uncaught error: the message and the Lua traceback.
    Raised {
        /// The error message.
        message: String,
        /// Lua's `stack traceback:` text (may be empty).
        traceback: String,
    },
    /// Every goroutine was blocked while the host waited: the report.
    Deadlock(String),
    /// The runtime ended first.
    Stopped(Outcome),
}

fn lock<T>(m: &Lock<T>) -> Guard<'_, T> {
    // Poisoned only by a panic of the runtime itself.
    m.lock()
}

/// A goroutine the host waits for.
pub struct HostTask {
    gid: std::sync::atomic::AtomicU64,
    end: Lock<TaskSlot>,
    cv: Condvar,
    /// Set with `end`, read by a host spinning before it blocks.
    ended: AtomicBool,
}

/// A task's end, and how many host threads sleep on it (an end that
/// finds none wakes nobody: no system call when the host waits inline or
/// spins).
#[derive(Default)]
struct TaskSlot {
    end: Option<TaskEnd>,
    sleepers: usize,
}

impl Default for HostTask {
    fn default() -> Self {
        HostTask {
            gid: std::sync::atomic::AtomicU64::new(0),
            end: Lock::new(Rank::HostTask, TaskSlot::default()),
            cv: Condvar::new(),
            ended: AtomicBool::new(false),
        }
    }
}

impl HostTask {
    /// The goroutine's id (0 until it is registered).
    pub fn gid(&self) -> u64 {
        self.gid.load(Ordering::Acquire)
    }

    /// Records how the task ended (the first end wins) and wakes the host.
    fn set_end(&self, end: TaskEnd) -> bool {
        let mut e = lock(&self.end);
        if e.end.is_some() {
            return false;
        }
        e.end = Some(end);
        self.ended.store(true, Ordering::Release);
        if e.sleepers > 0 {
            self.cv.notify_all();
        }
        true
    }

    /// As [`HostTask::wait`] without a deadline, for the task's last
    /// waiter: its values are taken, not copied (copying takes the state's
    /// lock); it keeps an end without values.
    pub fn take(&self) -> TaskEnd {
        let taken = self.wait_then(None, |end| {
            std::mem::replace(end, TaskEnd::Returned(mlua::MultiValue::new()))
        });
        taken.expect("no deadline")
    }

    /// Waits until the task ends or `deadline` passes (`None` then).
    pub fn wait(&self, deadline: Option<Instant>) -> Option<TaskEnd> {
        self.wait_then(deadline, |end| end.clone())
    }

    /// Waits as [`HostTask::wait`] and reads the end with `read`.
    fn wait_then(
        &self,
        deadline: Option<Instant>,
        read: impl FnOnce(&mut TaskEnd) -> TaskEnd,
    ) -> Option<TaskEnd> {
        crate::chan::host_spin(&self.ended, deadline);
        let mut e = lock(&self.end);
        loop {
            if let Some(end) = e.end.as_mut() {
                return Some(read(end));
            }
            let left = match deadline {
                None => None,
                Some(d) => Some(d.checked_duration_since(Instant::now())?),
            };
            e.sleepers += 1;
            e = match left {
                None => e.wait(&self.cv),
                Some(left) => e.wait_timeout(&self.cv, left),
            };
            e.sleepers -= 1;
        }
    }
}

/// The host's side of one runtime.
pub struct Host {
    tasks: Lock<FxHashMap<u64, Arc<HostTask>>>,
    /// The tasks of host threads waiting for an actor (invariant 4).
    actor_waits: Lock<Vec<Arc<HostTask>>>,
    /// Tasks in `tasks` and in `actor_waits`.
    ntasks: AtomicUsize,
    /// Channel endpoints the host holds.
    holds: AtomicUsize,
    /// Goroutines asked to stop (`Task::interrupt`).
    interrupts: Lock<FxHashMap<u64, crate::preempt::Stop>>,
    ninterrupts: AtomicUsize,
    /// Host threads blocked on a channel.
    parked: Lock<Vec<Weak<HostPark>>>,
    /// The host waits in `shutdown` for every goroutine to end.
    pub(crate) shutdown_wait: AtomicBool,
    /// `Runtime::run` made the first goroutine the program's main one.
    pub(crate) program: AtomicBool,
}

impl Default for Host {
    fn default() -> Host {
        Host {
            tasks: Lock::new(Rank::HostTasks, FxHashMap::default()),
            actor_waits: Lock::new(Rank::HostActorWaits, Vec::new()),
            ntasks: AtomicUsize::new(0),
            holds: AtomicUsize::new(0),
            interrupts: Lock::new(Rank::HostInterrupts, Default::default()),
            ninterrupts: AtomicUsize::new(0),
            parked: Lock::new(Rank::HostParked, Vec::new()),
            shutdown_wait: AtomicBool::new(false),
            program: AtomicBool::new(false),
        }
    }
}

impl Host {
    /// Records that the host waits for goroutine `gid`.
    pub(crate) fn add_task(&self, gid: u64, task: Arc<HostTask>) {
        task.gid.store(gid, Ordering::Release);
        lock(&self.tasks).insert(gid, task);
        self.ntasks.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the host waits for any goroutine or actor.
    pub(crate) fn has_tasks(&self) -> bool {
        self.ntasks.load(Ordering::Acquire) > 0
    }

    /// Whether the host waits for goroutine `gid`.
    pub(crate) fn is_task(&self, gid: u64) -> bool {
        self.has_tasks() && lock(&self.tasks).contains_key(&gid)
    }

    /// Ends the task of goroutine `gid`, if there is one; false if none.
    pub(crate) fn end_task(&self, gid: u64, end: TaskEnd) -> bool {
        if !self.has_tasks() {
            return false;
        }
        let Some(t) = lock(&self.tasks).remove(&gid) else {
            return false;
        };
        self.ntasks.fetch_sub(1, Ordering::AcqRel);
        t.set_end(end);
        true
    }

    /// Ends every task, those of host threads waiting for an actor too,
    /// with `end(...)` (a deadlock, or the runtime stopped).
    pub(crate) fn end_all(&self, end: impl Fn() -> TaskEnd) {
        let mut tasks: Vec<_> = lock(&self.tasks).drain().map(|(_, t)| t).collect();
        tasks.append(&mut lock(&self.actor_waits));
        self.ntasks.fetch_sub(tasks.len(), Ordering::AcqRel);
        for t in tasks {
            t.set_end(end());
        }
    }

    /// Blocks the calling host thread until `actor` has finished, or
    /// every goroutine is blocked, or the runtime stops (see
    /// `Runtime::wait_actor`). Once the wait counts as a task, `look`
    /// makes an idle M look for a deadlock again; `stopped` is the
    /// runtime's outcome if it is stopping, asked after that (a `finish`
    /// that ran before is seen then; one that runs after ends the wait).
    pub(crate) fn wait_actor(
        &self,
        actor: &Actor,
        look: impl FnOnce(),
        stopped: impl FnOnce() -> Option<Outcome>,
    ) -> TaskEnd {
        let returned = || TaskEnd::Returned(mlua::MultiValue::new());
        let task = Arc::new(HostTask::default());
        let told = task.clone();
        // Told before the wait counts as a task, if the actor ends now.
        let waiting = actor.on_finished(Box::new(move || {
            told.set_end(returned());
        }));
        // A finished actor is no task: a deadlock check must not end it.
        if waiting {
            lock(&self.actor_waits).push(task.clone());
            self.ntasks.fetch_add(1, Ordering::AcqRel);
            look();
        }
        if let Some(o) = stopped() {
            task.set_end(TaskEnd::Stopped(o));
        }
        if !waiting {
            task.set_end(returned());
        }
        let end = task.wait(None).expect("no deadline");
        {
            let mut waits = lock(&self.actor_waits);
            // Gone if `end_all` ended it.
            if let Some(i) = waits.iter().position(|t| Arc::ptr_eq(t, &task)) {
                waits.swap_remove(i);
                self.ntasks.fetch_sub(1, Ordering::AcqRel);
            }
        }
        match end {
            TaskEnd::Returned(_) => {
                actor.observe();
                match actor.result() {
                    Some(Err(message)) => TaskEnd::Raised {
                        message,
                        traceback: String::new(),
                    },
                    _ => TaskEnd::Returned(mlua::MultiValue::new()),
                }
            }
            other => other,
        }
    }

    /// Wakes every host thread blocked on a channel: the runtime stopped.
    pub(crate) fn stop_parked(&self) {
        for p in lock(&self.parked).drain(..).filter_map(|w| w.upgrade()) {
            p.stop();
        }
    }

    /// Records a host thread about to block on a channel.
    pub(crate) fn add_parked(&self, p: &Arc<HostPark>) {
        let mut v = lock(&self.parked);
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(p));
    }

    /// Counts one more endpoint held by the host.
    pub(crate) fn hold(&self) {
        self.holds.fetch_add(1, Ordering::AcqRel);
    }

    /// Counts one endpoint less; true when it was the last.
    pub(crate) fn release(&self) -> bool {
        self.holds.fetch_sub(1, Ordering::AcqRel) == 1
    }

    /// Whether the host holds a channel endpoint.
    pub(crate) fn holds_any(&self) -> bool {
        self.holds.load(Ordering::Acquire) > 0
    }

    /// Asks goroutine `gid` to stop, for `why`.
    pub(crate) fn interrupt(&self, gid: u64, why: crate::preempt::Stop) {
        if lock(&self.interrupts).insert(gid, why).is_none() {
            self.ninterrupts.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Why goroutine `gid` has been asked to stop, if it has (cheap when
    /// none has).
    #[inline]
    pub(crate) fn interrupt_of(&self, gid: u64) -> Option<crate::preempt::Stop> {
        if self.ninterrupts.load(Ordering::Relaxed) == 0 {
            return None;
        }
        lock(&self.interrupts).get(&gid).copied()
    }

    /// Forgets the interrupt of a goroutine that has ended.
    #[inline]
    pub(crate) fn forget_interrupt(&self, gid: u64) {
        if self.ninterrupts.load(Ordering::Relaxed) > 0
            && lock(&self.interrupts).remove(&gid).is_some()
        {
            self.ninterrupts.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_task_ends_once_and_the_first_end_wins() {
        let host = Host::default();
        let t = Arc::new(HostTask::default());
        host.add_task(7, t.clone());
        assert!(host.has_tasks());
        assert!(host.end_task(7, TaskEnd::Deadlock("d".into())));
        assert!(!host.end_task(7, TaskEnd::Stopped(Outcome::Exit(0))));
        assert!(!host.has_tasks());
        assert!(matches!(t.wait(None), Some(TaskEnd::Deadlock(s)) if s == "d"));
    }

    #[test]
    fn waiting_for_a_task_times_out() {
        let t = HostTask::default();
        let deadline = Instant::now() + Duration::from_millis(5);
        assert!(t.wait(Some(deadline)).is_none());
    }

    #[test]
    fn a_stopped_runtime_wakes_parked_hosts() {
        use crate::chan::ParkEnd;
        let host = Host::default();
        let p = Arc::new(HostPark::default());
        host.add_parked(&p);
        host.stop_parked();
        assert_eq!(p.wait(None).err(), Some(ParkEnd::Stopped));
    }

    #[test]
    fn interrupts_are_remembered_until_forgotten() {
        use crate::preempt::Stop;
        let host = Host::default();
        assert_eq!(host.interrupt_of(3), None);
        host.interrupt(3, Stop::Interrupt);
        host.interrupt(3, Stop::Interrupt);
        assert_eq!(host.interrupt_of(3), Some(Stop::Interrupt));
        // A reclaim after an interrupt: the latest reason.
        host.interrupt(3, Stop::Leaked);
        assert_eq!(host.interrupt_of(3), Some(Stop::Leaked));
        assert_eq!(host.ninterrupts.load(Ordering::Relaxed), 1);
        host.forget_interrupt(3);
        assert_eq!(host.interrupt_of(3), None);
        assert_eq!(host.ninterrupts.load(Ordering::Relaxed), 0);
    }
}
