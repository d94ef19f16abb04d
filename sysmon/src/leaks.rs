//! Goroutine leak detection: which parked goroutines can never be woken.
//!
//! Go 1.26's goroutine leak profile reports goroutines parked on a
//! channel or lock that no goroutine that can still run can ever reach:
//! nothing will ever wake them. lugo extends it to actors (isolated Lua
//! states): each actor runs a special collection of its own Lua heap and
//! reports a [`ActorReport`]; the runtime adds what it knows of the shared
//! objects (channels, mutexes, ...) as [`ObjectReport`]s. This module owns
//! the last step, a pure function over that [`Snapshot`]: it joins the
//! reports into one reachability graph, built in a `gc-arena` arena (the
//! sysmon thread's own heap, dropped when the check ends), and lets the
//! arena's collector mark it ([`leaked`]). A candidate goroutine whose node
//! the collector finds unreachable is leaked, once no candidate is
//! *revived* (see "No false leak"). The module never touches a Lua state
//! or the runtime; taking the snapshot consistently, and probing again
//! when asked to, is the caller's job.
//!
//! # The graph
//!
//! Nodes: `Actor(a)` for each actor, `Obj(o)` for each shared object,
//! `G(g)` for each candidate goroutine. Roots: `Actor(a)` when
//! [`ActorReport::can_run`], `Obj(o)` when [`ObjectReport::rooted`]. Edges:
//!
//! - `Actor(a) -> Obj(o)` for each `o` in the actor's `reached`: code that
//!   runs in the actor can touch what its roots reach;
//! - `Actor(a) -> G(g)` for each of its candidates with `reached`: its
//!   roots reach that goroutine's thread (a global holds it, say);
//! - `Obj(o) -> G(g)` for every candidate, of any actor, whose `waits_on`
//!   holds `o`: touching the object may wake the goroutine;
//! - `G(g) -> Actor(a)` (its own actor) for every candidate, reached or
//!   not: a goroutine that runs can touch its actor's globals, and through
//!   them whatever its actor's roots reach.
//!
//! What a candidate's own stack holds has no edge. For a `reached`
//! candidate none is needed: its thread was marked from its actor's roots,
//! so its stack is in the actor's `reached` already, behind `G(g) ->
//! Actor(a)`. For one not `reached` it is unknown; see below.
//!
//! An object id that the reports name but [`Snapshot::objects`] does not
//! list is not rooted. A candidate that waits on nothing can only be
//! reached through `Actor(a) -> G(g)`, so it is leaked unless its actor's
//! roots reach it *and* something reaches the actor; that is the general
//! rule, not a special case.
//!
//! Two things keep the graph small; they change no node's reachability.
//! An object no candidate waits on leads nowhere and gets no node. And no
//! node has more than [`FANOUT`] edges: a longer list hangs off a tree of
//! relay nodes.
//!
//! # No false leak
//!
//! Every edge over-approximates "can wake" or "can come to run": an actor
//! that can run touches at most what its roots reach, a goroutine that
//! runs at most what its stack holds and what its actor's roots reach, and
//! touching an object wakes at most the goroutines that wait on it. The
//! one thing the graph does not know is the stack of a candidate its
//! actor's collector did not reach:
//!
//! - a reached candidate's stack was marked from its actor's roots, so all
//!   it holds is in the actor's `reached`: waking it adds nothing the graph
//!   does not have;
//! - an unreached candidate the graph does not reach never runs, so what
//!   its stack holds does not matter;
//! - an unreached candidate the graph reaches (it is woken through an
//!   object another actor reaches, say) may run and touch objects only its
//!   stack holds, edges the graph lacks. Then the answer is provisional: a
//!   goroutine waiting on such an object may be reported leaked wrongly.
//!   [`Outcome::Marked`] lists these candidates as `revived`, and the
//!   caller probes their actors again with them as roots: they are no
//!   longer candidates, what their stacks hold joins their actors'
//!   `reached`, and their actors `can_run`. Then it asks again.
//!
//! Each round turns at least one candidate into a root, so this ends. At
//! the fixed point, where no candidate is revived, every candidate the
//! graph reaches is a reached one: every live candidate's stack is
//! accounted for, every goroutine that could ever run again is reachable
//! from the roots, and a goroutine reported as leaked cannot be woken. All
//! that as long as the reports are sound: `reached` covers everything the
//! actor's roots reach, `can_run` every actor with a goroutine that may
//! run without help (a revived one included), and `rooted` every object
//! held from outside any Lua heap (host, timers, values in flight) or
//! touched while the check ran. When the collection does not finish
//! within its [`Budget`], the answer is [`Outcome::OutOfBudget`] and the
//! caller reports nothing: never a guess.
//!
//! # Where it misses a leak
//!
//! The same over-approximations. Reachability, not liveness (as in Go): an
//! actor that can run is taken to touch everything its roots reach, though
//! its code may never use it, and so is a woken goroutine, with its stack;
//! touching an object is taken to wake every waiter; an object the host
//! holds is taken to be used. A goroutine kept reachable only through one
//! of these is not reported.
//!
//! # Driving the collector
//!
//! The arena is built in one go (every node before the edges that lead to
//! it, so cycles need no special case), then marked in steps: each step is
//! one `Arena::mark_debt` call paid exactly [`STEP_NODES`] units of debt,
//! with a pacing that charges one unit per traced node and nothing else, so
//! a step traces at most [`STEP_NODES`] nodes of at most [`FANOUT`] edges
//! each (the first step also traces the arena's root: one write per root
//! node and per candidate). The budget is checked before every step. Once
//! marking is done, `MarkedArena::finalize` tells, through
//! `GcWeak::is_dead`, which candidates the collector would free (leaked)
//! and so which unreached ones it keeps (revived); the arena is then
//! dropped, which frees everything at once (no sweep is needed to learn
//! the answer).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use gc_arena::barrier::unlock;
use gc_arena::lock::RefLock;
use gc_arena::metrics::Pacing;
use gc_arena::{Arena, Collect, Gc, GcWeak, Mutation, Rootable};

/// The address of a shared object (channel, mutex, ...), stable while the
/// check runs.
pub type ObjId = usize;

/// Everything one check looks at: every actor's report and what the
/// runtime knows of the shared objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// One report per actor.
    pub actors: Vec<ActorReport>,
    /// The shared objects the runtime knows of. An object the reports name
    /// but this list does not is not rooted.
    pub objects: Vec<ObjectReport>,
}

/// What one actor's special collection found in its own Lua heap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActorReport {
    /// The actor has a running or runnable goroutine, or one parked on
    /// something that wakes it by itself (timer, socket, host), or one an
    /// earlier check revived (now among its roots): its roots are live.
    pub can_run: bool,
    /// Shared objects reachable from the actor's roots: its globals, its
    /// registry, its goroutines that can run (those an earlier check
    /// revived included), and the candidates its own collector reached.
    pub reached: Vec<ObjId>,
    /// The actor's goroutines parked on shared objects (or on nothing that
    /// will ever wake them), not on anything that wakes them by itself:
    /// those that may be leaked.
    pub candidates: Vec<Candidate>,
}

/// A parked goroutine that may be leaked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidate {
    /// Goroutine id, as [`Outcome::Marked`] reports it.
    pub id: u64,
    /// The actor's collector reached the goroutine's thread from the
    /// actor's roots: everything its stack holds is in the actor's
    /// `reached`. If not, what its stack holds is unknown (see `revived`
    /// in [`Outcome::Marked`]).
    pub reached: bool,
    /// The shared objects whose use may wake it (a `select` waits on
    /// several).
    pub waits_on: Vec<ObjId>,
}

/// A shared object as the runtime sees it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectReport {
    /// Its address.
    pub id: ObjId,
    /// Held from outside any Lua heap (host, timer, a value in flight) or
    /// touched while the check ran: whatever waits on it may be woken.
    pub rooted: bool,
}

/// How much work a check may do before it gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Most marking steps (`Arena::mark_debt` calls), each tracing at most
    /// [`STEP_NODES`] nodes. 0 gives up at once on any snapshot with a
    /// candidate.
    pub steps: usize,
    /// Most wall time, counted from the call. The clock is read before each
    /// step only: building the graph (one pass over the snapshot), the last
    /// step and the final pass over the candidates run past it. Zero gives
    /// up at once on any snapshot with a candidate.
    pub time: Duration,
}

impl Budget {
    /// No limit at all.
    pub const UNLIMITED: Budget = Budget {
        steps: usize::MAX,
        time: Duration::MAX,
    };
}

/// What a check found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Marking finished.
    Marked {
        /// The candidates the collector found unreachable, sorted, each once.
        leaked: Vec<u64>,
        /// The candidates with `reached == false` that the graph does reach
        /// (woken through an object another actor reaches, say), sorted,
        /// each once: their stacks were not part of their actor's report,
        /// so what they hold is unknown. The answer stands only when this
        /// is empty; otherwise the caller probes their actors again with
        /// these goroutines as roots (then they are no longer candidates,
        /// and their actors can run) and asks again.
        revived: Vec<u64>,
    },
    /// The budget ran out before marking finished: nothing is known, and
    /// the caller must report no leak.
    OutOfBudget,
}

/// Nodes traced per marking step.
pub const STEP_NODES: usize = 1024;

/// Most edges of one node; longer edge lists hang off relay nodes.
pub const FANOUT: usize = 64;

/// One graph node. Its kind does not matter to the collector, only its
/// edges; most are set once every node they lead to exists, hence the
/// lock.
#[derive(Collect)]
#[collect(no_drop)]
struct Node<'gc> {
    edges: RefLock<Vec<NodePtr<'gc>>>,
}

type NodePtr<'gc> = Gc<'gc, Node<'gc>>;

/// The arena's root: the graph's roots, strongly, and every candidate's
/// node, weakly (so it does not keep them alive), in snapshot order.
#[derive(Collect)]
#[collect(no_drop)]
struct Root<'gc> {
    roots: Vec<NodePtr<'gc>>,
    candidates: Vec<GcWeak<'gc, Node<'gc>>>,
}

type GraphArena = Arena<Rootable![Root<'_>]>;

fn node<'gc>(mc: &Mutation<'gc>, edges: Vec<NodePtr<'gc>>) -> NodePtr<'gc> {
    Gc::new(
        mc,
        Node {
            edges: RefLock::new(edges),
        },
    )
}

/// Gives `from` the edges `to`, through a tree of relay nodes if there are
/// more than [`FANOUT`] of them.
fn link<'gc>(mc: &Mutation<'gc>, from: NodePtr<'gc>, mut to: Vec<NodePtr<'gc>>) {
    while to.len() > FANOUT {
        to = to
            .chunks(FANOUT)
            .map(|chunk| node(mc, chunk.to_vec()))
            .collect();
    }
    *unlock!(Gc::write(mc, from), Node, edges).borrow_mut() = to;
}

/// Builds the graph of `s` (see the module doc) in `mc`; candidates are
/// watched in snapshot order (actor by actor, candidate by candidate).
fn build<'gc>(mc: &Mutation<'gc>, s: &Snapshot) -> Root<'gc> {
    // Every node first (a candidate's, whose one edge leads to its actor,
    // with that edge). Only objects some candidate waits on lead anywhere:
    // each gets one node, and collects its waiters.
    let mut objs: HashMap<ObjId, (NodePtr<'gc>, Vec<NodePtr<'gc>>)> = HashMap::new();
    let mut roots = Vec::new();
    let mut candidates = Vec::new();
    let mut actors = Vec::with_capacity(s.actors.len());
    for a in &s.actors {
        let actor = node(mc, Vec::new());
        if a.can_run {
            roots.push(actor);
        }
        let mut reached = Vec::new();
        for c in &a.candidates {
            let g = node(mc, vec![actor]);
            candidates.push(Gc::downgrade(g));
            if c.reached {
                reached.push(g);
            }
            for &o in &c.waits_on {
                objs.entry(o)
                    .or_insert_with(|| (node(mc, Vec::new()), Vec::new()))
                    .1
                    .push(g);
            }
        }
        actors.push((actor, reached));
    }

    // Then the other edges.
    let obj = |o: &ObjId| objs.get(o).map(|(n, _)| *n);
    for (a, (actor, mut edges)) in s.actors.iter().zip(actors) {
        edges.extend(a.reached.iter().filter_map(obj));
        link(mc, actor, edges);
    }
    roots.extend(
        s.objects
            .iter()
            .filter(|o| o.rooted)
            .filter_map(|o| obj(&o.id)),
    );
    for (n, waiters) in objs.into_values() {
        link(mc, n, waiters);
    }
    Root { roots, candidates }
}

/// Marks the graph of `s` (see the module doc): the candidates whose node
/// the collector finds unreachable from the roots are leaked, those not
/// `reached` that it finds reachable are revived (the answer is then
/// provisional); or [`Outcome::OutOfBudget`] if marking does not finish
/// within `budget`. A snapshot without candidates has no leak and no
/// revived candidate, whatever the budget.
pub fn leaked(s: &Snapshot, budget: Budget) -> Outcome {
    let start = Instant::now();
    let cands: Vec<(u64, bool)> = s
        .actors
        .iter()
        .flat_map(|a| a.candidates.iter().map(|c| (c.id, c.reached)))
        .collect();
    if cands.is_empty() {
        return Outcome::Marked {
            leaked: Vec::new(),
            revived: Vec::new(),
        };
    }

    let mut arena = GraphArena::new(|mc| build(mc, s));
    // Pacing: one unit of work per traced node, nothing for the rest; the
    // arena starts out owing one unit per allocation, which is cancelled,
    // so each step below does exactly the work it is paid for.
    let metrics = arena.metrics();
    metrics.set_pacing(Pacing {
        mark_factor: 0.0,
        trace_factor: 1.0,
        keep_factor: 0.0,
        drop_factor: 0.0,
        free_factor: 0.0,
        ..Pacing::DEFAULT
    });
    metrics.adjust_debt(-metrics.allocation_debt());

    let mut steps = 0;
    let dead = loop {
        if steps >= budget.steps || start.elapsed() >= budget.time {
            return Outcome::OutOfBudget;
        }
        steps += 1;
        arena.metrics().adjust_debt(STEP_NODES as f64);
        if let Some(marked) = arena.mark_debt() {
            break marked.finalize(|fc, root| {
                root.candidates
                    .iter()
                    .map(|w| w.is_dead(fc))
                    .collect::<Vec<bool>>()
            });
        }
    };

    let mut leaked = Vec::new();
    let mut revived = Vec::new();
    for ((id, reached), dead) in cands.into_iter().zip(dead) {
        if dead {
            leaked.push(id);
        } else if !reached {
            revived.push(id);
        }
    }
    for v in [&mut leaked, &mut revived] {
        v.sort_unstable();
        v.dedup();
    }
    Outcome::Marked { leaked, revived }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUDGET: Budget = Budget {
        steps: usize::MAX,
        time: Duration::from_secs(600),
    };

    fn cand(id: u64, reached: bool, waits_on: &[ObjId]) -> Candidate {
        Candidate {
            id,
            reached,
            waits_on: waits_on.to_vec(),
        }
    }

    fn actor(can_run: bool, reached: &[ObjId], cands: Vec<Candidate>) -> ActorReport {
        ActorReport {
            can_run,
            reached: reached.to_vec(),
            candidates: cands,
        }
    }

    fn objects(ids: &[ObjId], rooted: &[ObjId]) -> Vec<ObjectReport> {
        ids.iter()
            .map(|&id| ObjectReport {
                id,
                rooted: rooted.contains(&id),
            })
            .collect()
    }

    fn marked(leaked: &[u64], revived: &[u64]) -> Outcome {
        Outcome::Marked {
            leaked: leaked.to_vec(),
            revived: revived.to_vec(),
        }
    }

    fn check(s: &Snapshot) -> Outcome {
        let out = leaked(s, BUDGET);
        assert_ne!(out, Outcome::OutOfBudget);
        out
    }

    #[test]
    fn no_candidates_no_leak() {
        assert_eq!(check(&Snapshot::default()), marked(&[], &[]));
        let s = Snapshot {
            actors: vec![actor(false, &[1], vec![])],
            objects: objects(&[1], &[]),
        };
        // Nothing to check, so even no budget at all answers.
        let none = Budget {
            steps: 0,
            time: Duration::ZERO,
        };
        assert_eq!(leaked(&s, none), marked(&[], &[]));
    }

    #[test]
    fn runnable_actor_reaching_the_object() {
        // A can run and reaches o1; B's goroutine, reached by B's
        // collector, waits on o1: live, its stack known.
        let s = Snapshot {
            actors: vec![
                actor(true, &[1], vec![]),
                actor(false, &[], vec![cand(7, true, &[1])]),
            ],
            objects: objects(&[1], &[]),
        };
        assert_eq!(check(&s), marked(&[], &[]));
        // Not reached by B's collector: live too, but revived.
        let s = Snapshot {
            actors: vec![
                actor(true, &[1], vec![]),
                actor(false, &[], vec![cand(7, false, &[1])]),
            ],
            objects: objects(&[1], &[]),
        };
        assert_eq!(check(&s), marked(&[], &[7]));
        // Same when the waiter is in the runnable actor itself.
        let s = Snapshot {
            actors: vec![actor(true, &[1], vec![cand(7, false, &[1])])],
            objects: objects(&[1], &[]),
        };
        assert_eq!(check(&s), marked(&[], &[7]));
    }

    #[test]
    fn object_reached_by_nobody_that_runs() {
        // Two goroutines wait on o1; the only actor that can run reaches
        // o2 only.
        let s = Snapshot {
            actors: vec![
                actor(true, &[2], vec![]),
                actor(false, &[], vec![cand(3, false, &[1]), cand(4, false, &[1])]),
            ],
            objects: objects(&[1, 2], &[]),
        };
        assert_eq!(check(&s), marked(&[3, 4], &[]));
    }

    fn cycle() -> Snapshot {
        // g1 waits on o1 and would send on o2; g2 waits on o2 and would
        // send on o1 (each holds the other's object on its stack only).
        // Their actor cannot run.
        Snapshot {
            actors: vec![actor(
                false,
                &[],
                vec![cand(2, false, &[2]), cand(1, false, &[1])],
            )],
            objects: objects(&[1, 2], &[]),
        }
    }

    #[test]
    fn cycle_of_two_goroutines_is_leaked() {
        assert_eq!(check(&cycle()), marked(&[1, 2], &[]));
    }

    #[test]
    fn cycle_woken_from_another_actor() {
        // B can run and reaches o1: g1 is revived. o2 is held by g1's stack
        // only, which its actor did not report, so g2 is leaked, but only
        // provisionally: the caller re-probes g1's actor with g1 as a root.
        let mut s = cycle();
        s.actors.push(actor(true, &[1], vec![]));
        assert_eq!(check(&s), marked(&[2], &[1]));
        // That probe finds o2 (and o1) through g1's stack, and the actor
        // can run: g2 is revived in turn.
        s.actors[0] = actor(true, &[1, 2], vec![cand(2, false, &[2])]);
        assert_eq!(check(&s), marked(&[], &[2]));
        // Probed with g2 as a root too: no candidate left, the answer
        // stands.
        s.actors[0] = actor(true, &[1, 2], vec![]);
        assert_eq!(check(&s), marked(&[], &[]));
    }

    #[test]
    fn rooted_object_wakes() {
        // g1 is woken from outside; its actor's roots reach o2, so g2 is
        // woken in turn. Both revived.
        let s = Snapshot {
            actors: vec![actor(
                false,
                &[2],
                vec![cand(1, false, &[1]), cand(2, false, &[2])],
            )],
            objects: objects(&[1, 2], &[1]),
        };
        assert_eq!(check(&s), marked(&[], &[1, 2]));
        // Only g1's stack may hold o2: g2 is leaked, provisionally.
        let s = Snapshot {
            actors: vec![
                actor(false, &[], vec![cand(1, false, &[1])]),
                actor(false, &[], vec![cand(2, false, &[2])]),
            ],
            objects: objects(&[1, 2], &[1]),
        };
        assert_eq!(check(&s), marked(&[2], &[1]));
    }

    #[test]
    fn candidate_reached_by_its_actor() {
        // Waits on nothing, but its runnable actor's roots reach it.
        let s = Snapshot {
            actors: vec![actor(true, &[], vec![cand(5, true, &[])])],
            objects: vec![],
        };
        assert_eq!(check(&s), marked(&[], &[]));
        // Reached, but its actor cannot run and nothing wakes it.
        let s = Snapshot {
            actors: vec![actor(false, &[1], vec![cand(5, true, &[1])])],
            objects: objects(&[1], &[]),
        };
        assert_eq!(check(&s), marked(&[5], &[]));
        // Not reached and waits on nothing: leaked even in a runnable actor.
        let s = Snapshot {
            actors: vec![actor(true, &[], vec![cand(5, false, &[])])],
            objects: vec![],
        };
        assert_eq!(check(&s), marked(&[5], &[]));
    }

    #[test]
    fn cross_actor_chain() {
        // A can run and reaches o1. B's g10, not reached, waits on o1: it
        // is revived, and wakes B's actor, so B's reached g11 (waiting on
        // nothing) is live and what B's roots reach (o3) is touched: C's
        // g30, waiting on o3, is revived too. C's g20 waits on o2, which
        // only g10's stack holds: leaked, provisionally.
        let mut s = Snapshot {
            actors: vec![
                actor(true, &[1], vec![]),
                actor(
                    false,
                    &[3],
                    vec![cand(10, false, &[1]), cand(11, true, &[])],
                ),
                actor(
                    false,
                    &[],
                    vec![cand(20, false, &[2]), cand(30, false, &[3])],
                ),
            ],
            objects: objects(&[1, 2, 3], &[]),
        };
        let first = s.clone();
        assert_eq!(check(&s), marked(&[20], &[10, 30]));
        // The caller re-probes B with g10 as a root (its stack holds o2)
        // and C with g30 (whose stack holds nothing shared): g20 is woken
        // through o2, and revived.
        s.actors[1] = actor(true, &[2, 3], vec![cand(11, true, &[])]);
        s.actors[2] = actor(true, &[], vec![cand(20, false, &[2])]);
        assert_eq!(check(&s), marked(&[], &[20]));
        // And with g20 as a root: nothing leaked, and the answer stands.
        s.actors[2] = actor(true, &[], vec![]);
        assert_eq!(check(&s), marked(&[], &[]));
        // Without A, the whole chain is leaked, and for good.
        let mut s = first;
        s.actors[0].can_run = false;
        assert_eq!(check(&s), marked(&[10, 11, 20, 30], &[]));
    }

    #[test]
    fn unknown_object_is_not_rooted() {
        // o9 is in no ObjectReport: not rooted, still a node.
        let s = Snapshot {
            actors: vec![
                actor(false, &[], vec![cand(1, false, &[9])]),
                actor(true, &[8], vec![cand(2, false, &[8])]),
            ],
            objects: vec![],
        };
        assert_eq!(check(&s), marked(&[1], &[2]));
    }

    #[test]
    fn select_woken_by_any_case() {
        for reached in [false, true] {
            let s = Snapshot {
                actors: vec![
                    actor(true, &[2], vec![]),
                    actor(false, &[], vec![cand(1, reached, &[1, 2])]),
                ],
                objects: objects(&[1, 2], &[]),
            };
            let revived: &[u64] = if reached { &[] } else { &[1] };
            assert_eq!(check(&s), marked(&[], revived));
        }
    }

    #[test]
    fn duplicate_ids_reported_once() {
        let s = Snapshot {
            actors: vec![actor(
                false,
                &[],
                vec![cand(4, false, &[1]), cand(4, false, &[1])],
            )],
            objects: objects(&[1], &[1]),
        };
        assert_eq!(check(&s), marked(&[], &[4]));
    }

    #[test]
    fn wide_fanout_goes_through_relays() {
        // 10 000 waiters on one object reached by a runnable actor, and as
        // many on one nobody reaches: every edge list is far past FANOUT.
        let n = 10_000u64;
        let mut cands = Vec::new();
        for i in 0..n {
            cands.push(cand(i, false, &[1]));
            cands.push(cand(n + i, false, &[2]));
        }
        let s = Snapshot {
            actors: vec![actor(true, &[1], vec![]), actor(false, &[], cands)],
            objects: objects(&[1, 2], &[]),
        };
        // The waiters of o1 are revived; they reach their actor only, which
        // reaches nothing, so those of o2 stay unreachable.
        let (lo, hi): (Vec<u64>, Vec<u64>) = ((0..n).collect(), (n..2 * n).collect());
        assert_eq!(check(&s), marked(&hi, &lo));
    }

    #[test]
    fn zero_budget_gives_up() {
        let none = Budget {
            steps: 0,
            time: Duration::from_secs(600),
        };
        assert_eq!(leaked(&cycle(), none), Outcome::OutOfBudget);
        let none = Budget {
            steps: usize::MAX,
            time: Duration::ZERO,
        };
        assert_eq!(leaked(&cycle(), none), Outcome::OutOfBudget);
        // One step is enough for a small graph.
        let one = Budget {
            steps: 1,
            time: Duration::from_secs(600),
        };
        assert_eq!(leaked(&cycle(), one), marked(&[1, 2], &[]));
    }

    #[test]
    fn marking_is_incremental() {
        // More than 4 steps' worth of reachable nodes (plus the actor and
        // the relays under its 4096 edges: 5 steps).
        let cands = (0..4 * STEP_NODES as u64)
            .map(|i| cand(i, true, &[]))
            .collect();
        let s = Snapshot {
            actors: vec![actor(true, &[], cands)],
            objects: vec![],
        };
        let steps = |steps| Budget {
            steps,
            time: Duration::from_secs(600),
        };
        assert_eq!(leaked(&s, steps(1)), Outcome::OutOfBudget);
        assert_eq!(leaked(&s, steps(4)), Outcome::OutOfBudget);
        assert_eq!(leaked(&s, steps(5)), marked(&[], &[]));
        assert_eq!(leaked(&s, Budget::UNLIMITED), marked(&[], &[]));
    }

    #[test]
    fn large_graph_finishes() {
        // 10 actors, 10 000 candidates and 1 000 objects each, every other
        // candidate reached by its actor's collector; the even actors can
        // run and reach their objects, the odd ones cannot. The odd actors'
        // candidates are leaked; the even actors' unreached ones revived.
        let mut s = Snapshot::default();
        let (mut leaked_ids, mut revived_ids) = (Vec::new(), Vec::new());
        let mut id = 0u64;
        for a in 0..10usize {
            let objs: Vec<ObjId> = (0..1000).map(|o| a * 1000 + o + 1).collect();
            let run = a % 2 == 0;
            let cands = (0..10_000usize)
                .map(|j| {
                    id += 1;
                    let reached = j % 2 == 0;
                    if !run {
                        leaked_ids.push(id);
                    } else if !reached {
                        revived_ids.push(id);
                    }
                    cand(id, reached, &[objs[j % 1000]])
                })
                .collect();
            s.actors
                .push(actor(run, if run { &objs } else { &[] }, cands));
            s.objects.extend(objects(&objs, &[]));
        }
        assert_eq!(leaked_ids.len(), 50_000);
        assert_eq!(revived_ids.len(), 25_000);
        assert_eq!(check(&s), marked(&leaked_ids, &revived_ids));
    }
}
