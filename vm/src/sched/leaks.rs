//! A leak check across actors: each actor's probe ([`crate::leak`]), the
//! reports joined into sysmon's reachability heap
//! ([`lugo_sysmon::leaks`], a gc-arena arena) and collected there, then
//! each leaked goroutine described by its own actor.
//!
//! Who runs it: a thread of its own for `runtime.leaks()` (the asking
//! goroutine waits on a channel for the answer, and is a root of the
//! check), the host's (`Runtime::leaks`), or sysmon's checker thread
//! (`LUGO_DEBUG=leakcheck=1`). The work on an actor runs on its M, in
//! pieces between its goroutines' turns (`Step`): a probe's cycle a
//! step of about `PROBE_STEP` (1 ms) at a time, the leaked goroutines
//! described `DESCRIBE_CHUNK` (64) at a time; a quarter of the Ps at most
//! work for a check at once. An actor in a blocking call, or that does
//! not answer within [`ASK_WAIT`], is left out: its goroutines are not
//! judged, and no object it may hold is either.
//!
//! Rounds: a suspect its actor's collector did not reach, but that the
//! graph finds woken through an object another actor reaches, held
//! things no report looked at; the check probes again with it as a root
//! (its actor can run), until no such suspect is left (`ROUNDS`, 4, at
//! most, then it reports nothing).
//!
//! An object is *rooted* (held from outside every Lua heap) unless its
//! references are all boxes the probes counted: either one probe saw its
//! strong count equal that actor's boxes of it (all its references were
//! there: only that actor's Lua code can hand it out again), or every
//! actor answered, nothing was handed out while the check ran
//! ([`crate::leak::handouts`]: references only went away meanwhile), and
//! the highest strong count read is no more than all the boxes counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use lugo_sysmon::leaks::{ActorReport, Budget, Candidate, ObjectReport, Outcome, Snapshot};

use super::dump::{created_by, format_traceback};
use super::Runtime;
use crate::actor::{Actor, Job, Labels};
use crate::ffi::LuaThread;
use crate::leak::{Probed, Report, Suspect};
use crate::wake::WaitReason;

/// How many leaked goroutines an actor describes in one turn.
const DESCRIBE_CHUNK: usize = 64;

/// How many times a check probes the actors at most (see `judge`).
const ROUNDS: usize = 4;

/// How long a check waits for the actors' answers (a probe's cycle runs
/// in steps between their goroutines' turns).
pub const ASK_WAIT: Duration = Duration::from_secs(5);

/// How long one step of a probe's cycle may run (the pause it causes the
/// actor's goroutines, but for the cycle's atomic phase, which is one).
const PROBE_STEP: Duration = Duration::from_millis(1);

/// How much work the reachability heap may take (a check never guesses:
/// past it, it reports nothing).
const BUDGET: Budget = Budget {
    steps: 1 << 20,
    time: Duration::from_secs(2),
};

/// A leaked goroutine (`runtime.leaks()`).
#[derive(Clone, Debug)]
pub struct Leak {
    /// Its id.
    pub gid: u64,
    /// Its actor's id.
    pub actor: u64,
    /// Why it waits.
    pub reason: WaitReason,
    /// Seconds it has waited.
    pub waited: u32,
    /// Its labels.
    pub labels: Option<Labels>,
    /// Its frames, as dumps print them.
    pub stack: String,
    /// Its `created by` line (empty: the host's).
    pub created_by: String,
    /// What it waits on (`chan(cap 0, len 0, open) at 0x...`), if known.
    pub waiting_on: Option<String>,
    /// Its slot and the park judged (a reclaim acts only on that park).
    key: crate::g::GKey,
    gen: u64,
}

/// What one check found, before the leaked goroutines are described.
#[derive(Default)]
struct Verdict {
    /// Per actor, its leaked goroutines.
    leaked: Vec<(Arc<Actor>, Vec<Suspect>)>,
}

impl Runtime {
    /// Every leaked goroutine of the program, found now: every actor is
    /// asked (each probes between two of its goroutines' turns).
    pub fn leaks(&self) -> Vec<Leak> {
        self.leaks_for(None)
    }

    /// As [`Runtime::leaks`], for goroutine `asker` (actor, id), which
    /// waits for the answer: a root of the check.
    pub fn leaks_for(&self, asker: Option<(u64, u64)>) -> Vec<Leak> {
        self.describe_all(self.judge(asker))
    }

    /// The records of a verdict's leaked goroutines: each actor describes
    /// its own, a chunk per turn (the ones no longer in the park judged
    /// are left out).
    fn describe_all(&self, verdict: Verdict) -> Vec<Leak> {
        let face = self.face();
        let hidden = face.hidden_chunk();
        let describe_key = face.describe_key;
        let work: Vec<(Arc<Actor>, Vec<Suspect>)> = verdict
            .leaked
            .into_iter()
            .flat_map(|(a, gs)| {
                gs.chunks(DESCRIBE_CHUNK)
                    .map(|c| (a.clone(), c.to_vec()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut leaks: Vec<Leak> = self
            .ask_all(
                work,
                move |a: &Arc<Actor>, th: LuaThread, leaked: Vec<Suspect>| {
                    Step::Done(describe(a, th, &leaked, hidden, describe_key))
                },
            )
            .into_iter()
            .flatten()
            .flatten()
            .collect();
        leaks.sort_by_key(|l| l.gid);
        leaks
    }

    /// Ends leaked goroutine `l` as an interrupt does (its `<close>`
    /// handlers run, with the error `goroutine leaked`), if it is still
    /// in the park it was judged in.
    pub fn reclaim(&self, l: &Leak) -> bool {
        self.actors()
            .into_iter()
            .find(|a| a.id == l.actor)
            .is_some_and(|a| self.reclaim_in(&a, l.key, l.gid, l.gen))
    }

    /// As [`Runtime::reclaim`], for G `gid` of slot `key` of actor `a`,
    /// judged in park `gen`.
    fn reclaim_in(&self, a: &Arc<Actor>, key: crate::g::GKey, gid: u64, gen: u64) -> bool {
        let why = crate::preempt::Stop::Leaked;
        // Recorded first, as an interrupt is: the M that runs it next
        // raises the stop (`run_actor`).
        self.shared.host.interrupt(gid, why);
        let done = a.interrupt_park(key, gid, gen, why);
        if !done {
            self.shared.host.forget_interrupt(gid);
        }
        done
    }

    /// Runs the probes and decides. A suspect its actor's collector did
    /// not reach but the graph wakes (through an object another actor
    /// reaches) held things nobody looked at: the check probes again with
    /// it as a root, until no such suspect is left (`ROUNDS`, 4, at most:
    /// then it reports nothing).
    fn judge(&self, asker: Option<(u64, u64)>) -> Verdict {
        let shared_of = self.face().shared_of;
        self.shared
            .census
            .stats
            .leak_job_last_ns
            .store(0, std::sync::atomic::Ordering::Relaxed);
        let mut roots: rustc_hash::FxHashMap<u64, Vec<u64>> = Default::default();
        if let Some((actor, gid)) = asker {
            roots.insert(actor, vec![gid]);
        }
        for _ in 0..ROUNDS {
            let before = crate::leak::handouts();
            let actors: Vec<(Arc<Actor>, Vec<u64>)> = self
                .actors()
                .into_iter()
                .map(|a| {
                    let r = roots.get(&a.id).cloned().unwrap_or_default();
                    (a, r)
                })
                .collect();
            let asked = actors.len();
            let reports: Vec<Report> = self
                .ask_all(actors, move |a: &Arc<Actor>, th: LuaThread, roots| {
                    // SAFETY: a job runs with the state held and no G
                    // running, on the actor's main thread.
                    probed(unsafe { crate::leak::probe(a, th.0, a.id == 1, &roots, shared_of) })
                })
                .into_iter()
                .flatten()
                .collect();
            let stable = reports.len() == asked && crate::leak::handouts() == before;
            let snapshot = snapshot(&reports, stable);
            match lugo_sysmon::leaks::leaked(&snapshot, BUDGET) {
                Outcome::OutOfBudget => break,
                Outcome::Marked { leaked, revived } if revived.is_empty() => {
                    return self.verdict(reports, leaked);
                }
                Outcome::Marked { revived, .. } => {
                    let revived: std::collections::HashSet<u64> = revived.into_iter().collect();
                    for r in &reports {
                        for s in r.suspects.iter().filter(|s| revived.contains(&s.gid)) {
                            roots.entry(r.actor).or_default().push(s.gid);
                        }
                    }
                }
            }
        }
        Verdict::default()
    }

    /// The verdict of a check whose last probes are `reports`: `ids`
    /// leaked (and marked so in their actors).
    fn verdict(&self, reports: Vec<Report>, ids: Vec<u64>) -> Verdict {
        let ids: std::collections::HashSet<u64> = ids.into_iter().collect();
        let by_id: rustc_hash::FxHashMap<u64, Arc<Actor>> =
            self.actors().into_iter().map(|a| (a.id, a)).collect();
        let mut verdict = Verdict::default();
        for r in reports {
            let Some(a) = by_id.get(&r.actor) else {
                continue;
            };
            let leaked: Vec<Suspect> = r
                .suspects
                .into_iter()
                .filter(|s| ids.contains(&s.gid))
                .collect();
            a.set_leaked(leaked.iter().map(|s| (s.key, s.gid, s.gen)));
            if !leaked.is_empty() {
                verdict.leaked.push((a.clone(), leaked));
            }
        }
        verdict
    }

    /// Runs `f` on each actor of `work` with its state held (by its M,
    /// between two goroutines' turns, one piece of work a turn), each with
    /// its argument; the answers in `work`'s order (`None`: no answer
    /// within [`ASK_WAIT`] of asking). At most a quarter of the Ps (one at
    /// least) work on a check at a time (Go's GC takes a quarter of them
    /// for its background marking): the others go on with the program.
    fn ask_all<A, R>(
        &self,
        work: Vec<(Arc<Actor>, A)>,
        f: impl Fn(&Arc<Actor>, LuaThread, A) -> Step<R> + Send + Sync + Clone + 'static,
    ) -> Vec<Option<R>>
    where
        A: Send + 'static,
        R: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut out: Vec<Option<R>> = (0..work.len()).map(|_| None).collect();
        let limit = self.gomaxprocs().div_ceil(4).max(1);
        let mut todo = work.into_iter().enumerate();
        // Asked and not answered yet: (piece, when its time is up).
        let mut asked: Vec<(usize, Instant)> = Vec::new();
        loop {
            while asked.len() < limit {
                let Some((i, (a, arg))) = todo.next() else {
                    break;
                };
                if a.blocking_gid() != 0 {
                    // Its M holds it for a blocking call (`io.read`): no
                    // answer to wait for; it is left out.
                    continue;
                }
                let f = f.clone();
                a.post_job(job(tx.clone(), i, Box::new(move |a, th| f(a, th, arg))));
                asked.push((i, Instant::now() + ASK_WAIT));
            }
            let Some(first) = asked.iter().map(|&(_, t)| t).min() else {
                return out;
            };
            match rx.recv_timeout(first.saturating_duration_since(Instant::now())) {
                Ok((i, r)) => {
                    out[i] = Some(r);
                    asked.retain(|&(j, _)| j != i);
                }
                // No answer in time: that actor is left out.
                Err(_) => asked.retain(|&(_, t)| t > Instant::now()),
            }
        }
    }
}

/// A piece of work on an actor's M: done, or more of it on a later turn.
enum Step<R> {
    Done(R),
    More(Cont<R>),
}

/// What is left of a piece of work.
type Cont<R> = Box<dyn FnOnce(&Arc<Actor>, LuaThread) -> Step<R> + Send>;

/// The actor's job that runs `k`, and posts what is left of it again
/// (after the goroutines that can run have had a turn), until it is done
/// and its answer goes to `tx` as answer `i`.
fn job<R: Send + 'static>(tx: std::sync::mpsc::Sender<(usize, R)>, i: usize, k: Cont<R>) -> Job {
    Box::new(move |a, th| match k(a, th) {
        Step::Done(r) => {
            let _ = tx.send((i, r));
        }
        Step::More(k) => a.post_job(job(tx, i, k)),
    })
}

/// A probe as a piece of work: its cycle stepped a turn at a time.
fn probed(p: Probed) -> Step<Report> {
    match p {
        Probed::Done(r) => Step::Done(r),
        Probed::Going(p) => Step::More(Box::new(move |a, th| {
            // SAFETY: a job runs with the state held and no G running, on
            // the actor's main thread; the probe started on this actor.
            probed(unsafe { p.step(a, th.0, PROBE_STEP) })
        })),
    }
}

/// sysmon's leak checker (`LUGO_DEBUG=leakcheck=1`, `=2`): a thread that
/// runs a check at each request (`true`: reclaim what it finds) and
/// reports each leaked goroutine on stderr once. Ends with the runtime.
pub(super) fn checker(
    shared: std::sync::Weak<super::Shared>,
    requests: crossbeam_channel::Receiver<bool>,
) {
    let mut told = std::collections::HashSet::new();
    while let Ok(reclaim) = requests.recv() {
        let Some(shared) = shared.upgrade() else {
            break;
        };
        let rt = Runtime { shared };
        if rt.stopping() {
            break;
        }
        let verdict = rt.judge(None);
        // The new ones, described (REPORT_EACH of them a check at most:
        // a program that leaks one goroutine per request is told so, not
        // flooded).
        let mut new = 0;
        let mut to_tell = Verdict::default();
        for (a, gs) in &verdict.leaked {
            let mut fresh = Vec::new();
            for s in gs.iter().filter(|s| told.insert(s.gid)) {
                new += 1;
                if new <= REPORT_EACH {
                    fresh.push(s.clone());
                }
            }
            if !fresh.is_empty() {
                to_tell.leaked.push((a.clone(), fresh));
            }
        }
        for l in rt.describe_all(to_tell) {
            eprintln!("{}", report_line(&l));
        }
        if new > REPORT_EACH {
            eprintln!(
                "lugo: and {} more goroutines leaked (runtime.leaks() lists them)",
                new - REPORT_EACH
            );
        }
        if reclaim {
            for (a, gs) in &verdict.leaked {
                for s in gs {
                    rt.reclaim_in(a, s.key, s.gid, s.gen);
                }
            }
        }
        // Only the ones still leaked are kept (ids are never reused).
        let now: std::collections::HashSet<u64> = verdict
            .leaked
            .iter()
            .flat_map(|(_, gs)| gs.iter().map(|s| s.gid))
            .collect();
        told.retain(|gid| now.contains(gid));
    }
}

/// How many new leaks a check of sysmon's reports one by one.
const REPORT_EACH: usize = 10;

/// `lugo: goroutine 17 leaked: blocked in chan send at worker.lua:12,
/// created by function <server.lua:20> in goroutine 1 at server.lua:30`.
pub fn report_line(l: &Leak) -> String {
    let state = super::dump::state_word(crate::g::GStatus::Waiting, l.reason);
    let mut s = format!("lugo: goroutine {} leaked: blocked in {state}", l.gid);
    // The first frame the user wrote: `\tworker.lua:12: in ...`.
    if let Some(site) = l
        .stack
        .lines()
        .map(str::trim)
        .find_map(|f| f.split_once(": ").map(|(site, _)| site))
    {
        s.push_str(&format!(" at {site}"));
    }
    if !l.created_by.is_empty() {
        s.push_str(", ");
        s.push_str(l.created_by.trim_end());
    }
    s
}

/// The reports as sysmon's heap takes them. `stable`: every actor answered
/// and nothing was handed out meanwhile.
fn snapshot(reports: &[Report], stable: bool) -> Snapshot {
    // Per object: the boxes counted, the highest strong count read, and
    // whether one probe saw all its references.
    let mut objs: rustc_hash::FxHashMap<usize, (usize, usize, bool)> = Default::default();
    for r in reports {
        for o in &r.objects {
            let e = objs.entry(o.id).or_default();
            e.0 += o.boxes;
            e.1 = e.1.max(o.strong);
            e.2 |= o.strong <= o.boxes;
        }
    }
    Snapshot {
        actors: reports
            .iter()
            .map(|r| ActorReport {
                can_run: r.can_run,
                reached: r
                    .objects
                    .iter()
                    .filter(|o| o.reached)
                    .map(|o| o.id)
                    .collect(),
                candidates: r
                    .suspects
                    .iter()
                    .map(|s| Candidate {
                        id: s.gid,
                        reached: s.reached,
                        waits_on: s.waits_on.clone(),
                    })
                    .collect(),
            })
            .collect(),
        objects: objs
            .into_iter()
            .map(|(id, (boxes, strong, confined))| ObjectReport {
                id,
                rooted: !(confined || stable && strong <= boxes),
            })
            .collect(),
    }
}

/// Describes the goroutines of `a` found leaked that are still parked in
/// the park judged.
fn describe(
    a: &Arc<Actor>,
    scratch: LuaThread,
    leaked: &[Suspect],
    hidden: &str,
    describe_key: &'static str,
) -> Vec<Leak> {
    // Their records, for those still in the park judged (the marks the
    // verdict set lapse by themselves for the others).
    let which: Vec<_> = leaked.iter().map(|s| (s.key, s.gid, s.gen)).collect();
    let now = crate::clock::coarse_secs_now();
    leaked
        .iter()
        .zip(a.parked_infos(&which))
        .filter_map(|(s, g)| {
            let g = g?;
            // SAFETY: the caller holds the state with no G running but,
            // maybe, the asking one (in its C function); `g` is parked.
            let (tb, creator, obj) = unsafe {
                (
                    crate::ffi::traceback(scratch, g.thread),
                    crate::ffi::creator(scratch, g.thread),
                    crate::ffi::wait_object(scratch, g.thread, describe_key),
                )
            };
            Some(Leak {
                gid: s.gid,
                actor: a.id,
                reason: s.reason,
                waited: now.saturating_sub(g.since),
                labels: g.labels.clone(),
                stack: format_traceback(&tb, hidden),
                created_by: creator.map(|c| created_by(&c, hidden)).unwrap_or_default(),
                waiting_on: obj,
                key: s.key,
                gen: s.gen,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::leak::Object;

    fn report(objects: Vec<Object>) -> Report {
        Report {
            actor: 1,
            can_run: false,
            objects,
            suspects: vec![],
        }
    }

    fn obj(id: usize, strong: usize, boxes: usize) -> Object {
        Object {
            id,
            strong,
            boxes,
            reached: false,
        }
    }

    fn rooted(s: &Snapshot, id: usize) -> bool {
        s.objects.iter().find(|o| o.id == id).unwrap().rooted
    }

    #[test]
    fn an_object_is_rooted_unless_its_boxes_account_for_it() {
        // Confined to one actor's boxes: not rooted, stable or not.
        let one = [report(vec![obj(1, 2, 2)])];
        assert!(!rooted(&snapshot(&one, false), 1));
        // A reference outside the boxes (the host, a timer): rooted.
        let held = [report(vec![obj(1, 3, 2)])];
        assert!(rooted(&snapshot(&held, true), 1));
        // Boxes in two actors: accounted for only in a stable check.
        let two = [report(vec![obj(1, 2, 1)]), report(vec![obj(1, 2, 1)])];
        assert!(!rooted(&snapshot(&two, true), 1));
        assert!(rooted(&snapshot(&two, false), 1));
        // One box in each of two actors, a third reference elsewhere.
        let three = [report(vec![obj(1, 3, 1)]), report(vec![obj(1, 3, 1)])];
        assert!(rooted(&snapshot(&three, true), 1));
    }
}
