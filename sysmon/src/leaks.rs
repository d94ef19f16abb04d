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
//! arena's collector mark it. A candidate goroutine whose node the
//! collector finds unreachable is leaked ([`leaked`]). The module never
//! touches a Lua state or the runtime; taking the snapshot consistently is
//! the caller's job.
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
//! - `G(g) -> Actor(a)` (its own actor): a goroutine that runs can touch
//!   its actor's globals;
//! - `G(g) -> Obj(o)` for every `o` in its actor's `held`, for a candidate
//!   not `reached`: a woken goroutine's stack may hold any object its
//!   actor's heap holds. (A `reached` one's thread was marked from the
//!   actor's roots: everything its stack holds is in the actor's
//!   `reached` already.)
//!
//! An object id that the reports name but [`Snapshot::objects`] does not
//! list is not rooted. A candidate that waits on nothing can only be
//! reached through `Actor(a) -> G(g)`, so it is leaked unless its actor's
//! roots reach it *and* something reaches the actor; that is the general
//! rule, not a special case.
//!
//! Two rewritings keep the graph small and the marking incremental; they
//! change no node's reachability. The last two edge kinds go through one
//! `Heap(a)` node per actor (`G(g) -> Heap(a) -> Actor(a)`, `Heap(a) ->
//! Obj(o)` for `o` in `held`), so `n` candidates of an actor holding `m`
//! objects cost `n + m` edges, not `n * m`. And no node has more than
//! [`FANOUT`] edges: a longer list hangs off a tree of relay nodes. An
//! object no candidate waits on leads nowhere and gets no node.
//!
//! # No false leak
//!
//! Every edge over-approximates "can wake" or "can come to run": whatever
//! could run touches at most what the edges say, and touching an object
//! can wake at most the goroutines that wait on it. So every goroutine
//! that could ever run again is reachable from the roots, and a goroutine
//! reported as leaked cannot be woken, as long as the reports are sound:
//! `reached` covers everything the actor's roots reach, `held` everything
//! its heap holds, `can_run` every actor with a goroutine that may run
//! without help, and `rooted` every object held from outside any Lua heap
//! (host, timers, values in flight) or touched while the check ran. When
//! the collection does not finish within its [`Budget`], the answer is
//! [`Outcome::OutOfBudget`] and the caller reports nothing: never a guess.
//!
//! # Where it misses a leak
//!
//! The same over-approximations: a woken goroutine is taken to touch every
//! object its actor holds and its actor's globals, though its stack may
//! reach few of them; an actor that can run is taken to touch everything
//! its roots reach, though its code may never use it (reachability, not
//! liveness, as in Go); touching an object is taken to wake every waiter;
//! an object the host holds is taken to be used. A goroutine kept
//! reachable only through one of these is not reported.
//!
//! # Driving the collector
//!
//! The arena is built in one go (all nodes first, then their edges, so
//! cycles need no special case), then marked in steps: each step is one
//! `Arena::mark_debt` call paid exactly [`STEP_NODES`] units of debt, with
//! a pacing that charges one unit per traced node and nothing else, so a
//! step traces at most [`STEP_NODES`] nodes of at most [`FANOUT`] edges
//! each (the first step also traces the arena's root: one write per root
//! node and per candidate). The budget is checked before every step. Once marking is done,
//! `MarkedArena::finalize` tells, through `GcWeak::is_dead`, which
//! candidates the collector would free; the arena is then dropped, which
//! frees everything at once (no sweep is needed to learn the answer).

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
    /// something that wakes it by itself (timer, socket, host): its roots
    /// are live.
    pub can_run: bool,
    /// Shared objects reachable from the actor's roots: its globals, its
    /// registry, its goroutines that can run, and the candidates its own
    /// collector reached.
    pub reached: Vec<ObjId>,
    /// Every shared object the actor's heap holds at all (a superset of
    /// `reached`).
    pub held: Vec<ObjId>,
    /// The actor's goroutines parked on shared objects (or on nothing that
    /// will ever wake them), not on anything that wakes them by itself:
    /// those that may be leaked.
    pub candidates: Vec<Candidate>,
}

/// A parked goroutine that may be leaked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Candidate {
    /// Goroutine id, as [`Outcome::Leaked`] reports it.
    pub id: u64,
    /// The actor's collector reached the goroutine's thread from the
    /// actor's roots.
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
    /// The ids of the leaked candidates, sorted ascending, each once
    /// (empty: none leaked).
    Leaked(Vec<u64>),
    /// The budget ran out before marking finished: nothing is known, and
    /// the caller must report no leak.
    OutOfBudget,
}

/// Nodes traced per marking step.
pub const STEP_NODES: usize = 1024;

/// Most edges of one node; longer edge lists hang off relay nodes.
pub const FANOUT: usize = 64;

/// One graph node. Its kind does not matter to the collector, only its
/// edges; they are set after every node exists, hence the lock.
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

fn node<'gc>(mc: &Mutation<'gc>) -> NodePtr<'gc> {
    Gc::new(
        mc,
        Node {
            edges: RefLock::new(Vec::new()),
        },
    )
}

/// Gives `from` the edges `to`, through a tree of relay nodes if there are
/// more than [`FANOUT`] of them.
fn link<'gc>(mc: &Mutation<'gc>, from: NodePtr<'gc>, mut to: Vec<NodePtr<'gc>>) {
    while to.len() > FANOUT {
        to = to
            .chunks(FANOUT)
            .map(|chunk| {
                let relay = node(mc);
                set_edges(mc, relay, chunk.to_vec());
                relay
            })
            .collect();
    }
    set_edges(mc, from, to);
}

fn set_edges<'gc>(mc: &Mutation<'gc>, n: NodePtr<'gc>, to: Vec<NodePtr<'gc>>) {
    *unlock!(Gc::write(mc, n), Node, edges).borrow_mut() = to;
}

/// Builds the graph of `s` (see the module doc) in `mc`; candidates are
/// watched in snapshot order (actor by actor, candidate by candidate).
fn build<'gc>(mc: &Mutation<'gc>, s: &Snapshot) -> Root<'gc> {
    // Every node first. Only objects some candidate waits on lead
    // anywhere: each gets one node, and collects its waiters.
    let mut objs: HashMap<ObjId, (NodePtr<'gc>, Vec<NodePtr<'gc>>)> = HashMap::new();
    let mut roots = Vec::new();
    let mut candidates = Vec::new();
    let mut actors = Vec::with_capacity(s.actors.len());
    for a in &s.actors {
        let actor = node(mc);
        let heap = node(mc);
        if a.can_run {
            roots.push(actor);
        }
        let mut reached = Vec::new();
        for c in &a.candidates {
            let g = node(mc);
            // A reached goroutine's stack is marked already: what it holds
            // is in the actor's `reached`; it leads to its actor only.
            set_edges(mc, g, vec![if c.reached { actor } else { heap }]);
            candidates.push(Gc::downgrade(g));
            if c.reached {
                reached.push(g);
            }
            for &o in &c.waits_on {
                objs.entry(o)
                    .or_insert_with(|| (node(mc), Vec::new()))
                    .1
                    .push(g);
            }
        }
        actors.push((actor, heap, reached));
    }

    // Then the edges.
    let obj = |o: &ObjId| objs.get(o).map(|(n, _)| *n);
    for (a, (actor, heap, mut edges)) in s.actors.iter().zip(actors) {
        edges.extend(a.reached.iter().filter_map(obj));
        link(mc, actor, edges);
        let mut edges = vec![actor];
        edges.extend(a.held.iter().filter_map(obj));
        link(mc, heap, edges);
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

/// Finds the leaked candidates of `s`: those whose node the collector
/// finds unreachable from the roots (see the module doc), or
/// [`Outcome::OutOfBudget`] if marking does not finish within `budget`.
/// A snapshot without candidates has no leak, whatever the budget.
pub fn leaked(s: &Snapshot, budget: Budget) -> Outcome {
    let start = Instant::now();
    let ids: Vec<u64> = s
        .actors
        .iter()
        .flat_map(|a| a.candidates.iter().map(|c| c.id))
        .collect();
    if ids.is_empty() {
        return Outcome::Leaked(Vec::new());
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

    let mut out: Vec<u64> = ids
        .into_iter()
        .zip(dead)
        .filter_map(|(id, dead)| dead.then_some(id))
        .collect();
    out.sort_unstable();
    out.dedup();
    Outcome::Leaked(out)
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

    fn actor(
        can_run: bool,
        reached: &[ObjId],
        held: &[ObjId],
        cands: Vec<Candidate>,
    ) -> ActorReport {
        ActorReport {
            can_run,
            reached: reached.to_vec(),
            held: held.to_vec(),
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

    fn check(s: &Snapshot) -> Vec<u64> {
        match leaked(s, BUDGET) {
            Outcome::Leaked(v) => v,
            Outcome::OutOfBudget => panic!("out of budget"),
        }
    }

    #[test]
    fn no_candidates_no_leak() {
        assert_eq!(check(&Snapshot::default()), Vec::<u64>::new());
        let s = Snapshot {
            actors: vec![actor(false, &[1], &[1], vec![])],
            objects: objects(&[1], &[]),
        };
        // Nothing to check, so even no budget at all answers.
        let none = Budget {
            steps: 0,
            time: Duration::ZERO,
        };
        assert_eq!(leaked(&s, none), Outcome::Leaked(vec![]));
    }

    #[test]
    fn runnable_actor_reaching_the_object() {
        // A can run and reaches o1; B's goroutine waits on o1.
        let s = Snapshot {
            actors: vec![
                actor(true, &[1], &[1], vec![]),
                actor(false, &[], &[1], vec![cand(7, false, &[1])]),
            ],
            objects: objects(&[1], &[]),
        };
        assert_eq!(check(&s), Vec::<u64>::new());
        // Same when the waiter is in the runnable actor itself.
        let s = Snapshot {
            actors: vec![actor(true, &[1], &[1], vec![cand(7, false, &[1])])],
            objects: objects(&[1], &[]),
        };
        assert_eq!(check(&s), Vec::<u64>::new());
    }

    #[test]
    fn object_held_by_nobody_that_runs() {
        // Two goroutines wait on o1; the only actor holding it cannot run.
        let s = Snapshot {
            actors: vec![
                actor(true, &[2], &[2], vec![]),
                actor(
                    false,
                    &[],
                    &[1],
                    vec![cand(3, false, &[1]), cand(4, false, &[1])],
                ),
            ],
            objects: objects(&[1, 2], &[]),
        };
        assert_eq!(check(&s), vec![3, 4]);
    }

    fn cycle() -> Snapshot {
        // g1 waits on o1 and would send on o2; g2 waits on o2 and would
        // send on o1. Their actor cannot run.
        Snapshot {
            actors: vec![actor(
                false,
                &[],
                &[1, 2],
                vec![cand(2, false, &[2]), cand(1, false, &[1])],
            )],
            objects: objects(&[1, 2], &[]),
        }
    }

    #[test]
    fn cycle_of_two_goroutines_is_leaked() {
        assert_eq!(check(&cycle()), vec![1, 2]);
    }

    #[test]
    fn cycle_woken_from_another_actor() {
        // B can run and reaches o1: g1 wakes, and its actor holds o2.
        let mut s = cycle();
        s.actors.push(actor(true, &[1], &[1], vec![]));
        assert_eq!(check(&s), Vec::<u64>::new());
    }

    #[test]
    fn rooted_object_wakes() {
        let s = Snapshot {
            actors: vec![actor(
                false,
                &[],
                &[1, 2],
                vec![cand(1, false, &[1]), cand(2, false, &[2])],
            )],
            objects: objects(&[1, 2], &[1]),
        };
        // g1 is woken from outside; it may then touch o2 (its actor holds it).
        assert_eq!(check(&s), Vec::<u64>::new());
        let s = Snapshot {
            actors: vec![
                actor(false, &[], &[1], vec![cand(1, false, &[1])]),
                actor(false, &[], &[2], vec![cand(2, false, &[2])]),
            ],
            objects: objects(&[1, 2], &[1]),
        };
        assert_eq!(check(&s), vec![2]);
    }

    #[test]
    fn candidate_reached_by_its_actor() {
        // Waits on nothing, but its runnable actor's roots reach it.
        let s = Snapshot {
            actors: vec![actor(true, &[], &[], vec![cand(5, true, &[])])],
            objects: vec![],
        };
        assert_eq!(check(&s), Vec::<u64>::new());
        // Reached, but its actor cannot run and nothing wakes it.
        let s = Snapshot {
            actors: vec![actor(false, &[1], &[1], vec![cand(5, true, &[1])])],
            objects: objects(&[1], &[]),
        };
        assert_eq!(check(&s), vec![5]);
        // Not reached and waits on nothing: leaked even in a runnable actor.
        let s = Snapshot {
            actors: vec![actor(true, &[], &[], vec![cand(5, false, &[])])],
            objects: vec![],
        };
        assert_eq!(check(&s), vec![5]);
    }

    #[test]
    fn cross_actor_chain() {
        // A can run and reaches o1; B's goroutine waits on o1 and B holds
        // o2; C's goroutine waits on o2.
        let s = Snapshot {
            actors: vec![
                actor(true, &[1], &[1], vec![]),
                actor(false, &[], &[1, 2], vec![cand(10, false, &[1])]),
                actor(false, &[], &[2], vec![cand(20, false, &[2])]),
            ],
            objects: objects(&[1, 2], &[]),
        };
        assert_eq!(check(&s), Vec::<u64>::new());
        // Without A, the whole chain is leaked.
        let mut s = s;
        s.actors[0].can_run = false;
        assert_eq!(check(&s), vec![10, 20]);
    }

    #[test]
    fn unknown_object_is_not_rooted() {
        // o9 is in no ObjectReport: not rooted, still a node.
        let s = Snapshot {
            actors: vec![
                actor(false, &[], &[9], vec![cand(1, false, &[9])]),
                actor(true, &[8], &[8], vec![cand(2, false, &[8])]),
            ],
            objects: vec![],
        };
        assert_eq!(check(&s), vec![1]);
    }

    #[test]
    fn select_woken_by_any_case() {
        let s = Snapshot {
            actors: vec![
                actor(true, &[2], &[2], vec![]),
                actor(false, &[], &[1, 2], vec![cand(1, false, &[1, 2])]),
            ],
            objects: objects(&[1, 2], &[]),
        };
        assert_eq!(check(&s), Vec::<u64>::new());
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
            actors: vec![
                actor(true, &[1], &[1], vec![]),
                actor(false, &[], &[], cands),
            ],
            objects: objects(&[1, 2], &[]),
        };
        // The waiters of o1 reach their (empty-held) actor only, so those of
        // o2 stay unreachable.
        assert_eq!(check(&s), (n..2 * n).collect::<Vec<_>>());
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
        assert_eq!(leaked(&cycle(), one), Outcome::Leaked(vec![1, 2]));
    }

    #[test]
    fn marking_is_incremental() {
        // More than 4 steps' worth of reachable nodes (plus the actor, its
        // heap node and the relays under the actor's 4096 edges: 5 steps).
        let cands = (0..4 * STEP_NODES as u64)
            .map(|i| cand(i, true, &[]))
            .collect();
        let s = Snapshot {
            actors: vec![actor(true, &[], &[], cands)],
            objects: vec![],
        };
        let steps = |steps| Budget {
            steps,
            time: Duration::from_secs(600),
        };
        assert_eq!(leaked(&s, steps(1)), Outcome::OutOfBudget);
        assert_eq!(leaked(&s, steps(4)), Outcome::OutOfBudget);
        assert_eq!(leaked(&s, steps(6)), Outcome::Leaked(vec![]));
        assert_eq!(leaked(&s, Budget::UNLIMITED), Outcome::Leaked(vec![]));
    }

    #[test]
    fn large_graph_finishes() {
        // 10 actors, 10 000 candidates and 1 000 objects each; the even
        // actors can run and reach their objects, the odd ones cannot.
        let mut s = Snapshot::default();
        let mut id = 0u64;
        for a in 0..10usize {
            let objs: Vec<ObjId> = (0..1000).map(|o| a * 1000 + o + 1).collect();
            let cands = (0..10_000usize)
                .map(|j| {
                    id += 1;
                    cand(id, j % 2 == 0, &[objs[j % 1000]])
                })
                .collect();
            let run = a % 2 == 0;
            s.actors
                .push(actor(run, if run { &objs } else { &[] }, &objs, cands));
            s.objects.extend(objects(&objs, &[]));
        }
        match leaked(&s, BUDGET) {
            Outcome::Leaked(v) => assert_eq!(v.len(), 50_000),
            Outcome::OutOfBudget => panic!("out of budget"),
        }
    }
}
