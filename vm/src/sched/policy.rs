//! The scheduler's decisions, as pure functions of what the M saw: the
//! loops in `m.rs` gather a snapshot, call one of these and carry out the
//! verdict (the split `lugo-sysmon` has between its policy and its
//! mechanism). Each is tested here without threads or Lua.
//!
//! - [`checkdead`]: what the last M to go idle does (Go's `checkdead`);
//! - [`after_turn`]: whether a run of an actor goes on after a G's turn
//!   ([`SliceEnd`]);
//! - [`route_panic`]: who takes a goroutine's uncaught error.

/// What an M saw as it went idle: everything `checkdead` looks at. The
/// gatherer fills the costly fields only when `all_idle`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IdleSnapshot {
    /// Every started M is idle, and something has run (a goroutine was
    /// started, or the host waits in `shutdown`).
    pub all_idle: bool,
    /// A pending timer can wake a goroutine when it fires.
    pub timer_can_wake: bool,
    /// A goroutine waits on a socket.
    pub sockets_wait: bool,
    /// The host holds a channel endpoint (it may still send).
    pub host_holds: bool,
    /// The host waits in `shutdown` for every goroutine to end.
    pub shutdown: bool,
    /// `Runtime::run` made a goroutine the program's main one.
    pub program: bool,
    /// The host waits for some goroutine (a task).
    pub host_tasks: bool,
    /// Goroutines alive.
    pub goroutines: usize,
    /// Every run queue is empty.
    pub queues_empty: bool,
    /// A timer is being fired (its wake-up may not be queued yet).
    pub timers_firing: bool,
}

/// What the M does about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Park as usual: somebody or something can still wake a goroutine.
    Park,
    /// A timer is firing: look again at once.
    LookAgain,
    /// The host's `shutdown` finds no goroutine left: the runtime ends
    /// with `Exit(0)`.
    Exit,
    /// Every goroutine is blocked for good and the program, or a host in
    /// `shutdown`, waits: the runtime ends with the deadlock report.
    Deadlock,
    /// Every goroutine is blocked for good and the host waits for tasks:
    /// they fail with the report; the runtime goes on.
    FailTasks,
}

/// Go's `checkdead`, for the M that goes idle (see the table in
/// `crate::host` for who is told).
pub(crate) fn checkdead(s: &IdleSnapshot) -> Verdict {
    // No timer that can wake anybody, no socket...
    let quiet = s.all_idle && !s.timer_can_wake && !s.sockets_wait;
    // ... and no host endpoint: nobody outside can wake a goroutine.
    let no_hope = quiet && !s.host_holds;
    // A host in `shutdown` waits for the goroutines; none is left.
    let all_done = quiet && s.shutdown && !s.program && s.goroutines == 0;
    if !(no_hope || all_done) {
        return Verdict::Park;
    }
    // A timer leaves the heap only while `firing` counts it, and its
    // wake-up queues work before the count drops.
    if s.timers_firing {
        return Verdict::LookAgain;
    }
    // Somebody to tell: the program, a host in `shutdown`, a host waiting
    // for a task.
    let tell = s.program || s.shutdown || s.host_tasks;
    if !(all_done || tell) || !s.queues_empty {
        return Verdict::Park;
    }
    match (s.program || s.shutdown, all_done) {
        (true, true) => Verdict::Exit,
        (true, false) => Verdict::Deadlock,
        (false, _) => Verdict::FailTasks,
    }
}

/// How a run of an actor ends (`Shared::run_actor`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SliceEnd {
    /// The runtime stops.
    Stopping,
    /// Nothing of the actor is runnable: it goes idle.
    Idle,
    /// The actor, or the program, has ended.
    Ended,
    /// The actor used up its CPU budget.
    OverBudget,
    /// The P's own M is back from a blocking call and wants it (this M is
    /// a spare): the actor goes back on the P's queue.
    Reclaimed,
    /// The P was retired (`gomaxprocs`): the actor goes to the global
    /// queue.
    Retired,
    /// Its slice is used up: to the back of the P's queue, also when no
    /// other actor waits (that lets a host waiting for the state's lock
    /// in).
    SliceUsed,
}

/// What the M saw after a G's turn.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Turn {
    /// The actor's CPU time is past its budget (looked at now and then).
    pub over_budget: bool,
    /// A G of the actor is runnable (one to stop and unwind first).
    pub runnable: bool,
    /// The P's own M wants it back.
    pub reclaimed: bool,
    /// The P is retired.
    pub retired: bool,
    /// The slice has run longer than `ACTOR_SLICE_NS` (looked at now and
    /// then).
    pub slice_over: bool,
}

/// Whether the run goes on after a turn (`None`), or how it ends.
///
/// An actor over its budget with a G runnable goes on: the M stops each
/// G it picks from then on (it raises at once and unwinds, its `<close>`
/// handlers run, as when sysmon stops the running G), and the first to
/// end ends the actor; with none runnable, it ends now.
pub(crate) fn after_turn(t: &Turn) -> Option<SliceEnd> {
    if t.over_budget && !t.runnable {
        Some(SliceEnd::OverBudget)
    } else if t.reclaimed {
        Some(SliceEnd::Reclaimed)
    } else if t.retired {
        Some(SliceEnd::Retired)
    } else if t.slice_over {
        Some(SliceEnd::SliceUsed)
    } else {
        None
    }
}

/// Who takes a goroutine's uncaught error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PanicRoute {
    /// The host waits for this goroutine: its task fails with the error.
    Task,
    /// The host's panic handler (`Config::on_panic`) gets the report; the
    /// program goes on.
    Handler,
    /// The program ends with the report (the main actor's goroutine).
    Program,
    /// Its actor ends with the error (another actor's goroutine).
    Actor,
}

/// Routes an uncaught error of a goroutine that is a host's `task` or
/// not, of the `main_actor` or not, with a panic `handler` or not.
pub(crate) fn route_panic(task: bool, main_actor: bool, handler: bool) -> PanicRoute {
    match (task, main_actor, handler) {
        (true, _, _) => PanicRoute::Task,
        (false, true, true) => PanicRoute::Handler,
        (false, true, false) => PanicRoute::Program,
        (false, false, _) => PanicRoute::Actor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every M idle, nothing can wake anybody, the program waits.
    fn stuck() -> IdleSnapshot {
        IdleSnapshot {
            all_idle: true,
            program: true,
            goroutines: 3,
            queues_empty: true,
            ..IdleSnapshot::default()
        }
    }

    #[test]
    fn a_program_whose_goroutines_are_all_blocked_is_deadlocked() {
        assert_eq!(checkdead(&stuck()), Verdict::Deadlock);
    }

    #[test]
    fn anything_that_can_still_wake_a_goroutine_means_park() {
        let cases = [
            IdleSnapshot {
                all_idle: false,
                ..stuck()
            },
            IdleSnapshot {
                timer_can_wake: true,
                ..stuck()
            },
            IdleSnapshot {
                sockets_wait: true,
                ..stuck()
            },
            IdleSnapshot {
                host_holds: true,
                ..stuck()
            },
            IdleSnapshot {
                queues_empty: false,
                ..stuck()
            },
        ];
        for s in cases {
            assert_eq!(checkdead(&s), Verdict::Park, "{s:?}");
        }
    }

    #[test]
    fn a_timer_being_fired_means_look_again() {
        let s = IdleSnapshot {
            timers_firing: true,
            ..stuck()
        };
        assert_eq!(checkdead(&s), Verdict::LookAgain);
    }

    #[test]
    fn nobody_to_tell_means_park() {
        // An embedded runtime with no program and no task: the host may
        // start more work.
        let s = IdleSnapshot {
            program: false,
            ..stuck()
        };
        assert_eq!(checkdead(&s), Verdict::Park);
    }

    #[test]
    fn a_host_waiting_for_tasks_sees_them_fail_and_the_runtime_goes_on() {
        let s = IdleSnapshot {
            program: false,
            host_tasks: true,
            ..stuck()
        };
        assert_eq!(checkdead(&s), Verdict::FailTasks);
    }

    #[test]
    fn shutdown_ends_with_exit_when_no_goroutine_is_left() {
        let done = IdleSnapshot {
            program: false,
            shutdown: true,
            goroutines: 0,
            ..stuck()
        };
        assert_eq!(checkdead(&done), Verdict::Exit);
        // Even while the host holds an endpoint: nobody is left to wake.
        let holding = IdleSnapshot {
            host_holds: true,
            ..done
        };
        assert_eq!(checkdead(&holding), Verdict::Exit);
        // Goroutines left, blocked for good: the deadlock.
        let blocked = IdleSnapshot {
            goroutines: 2,
            ..done
        };
        assert_eq!(checkdead(&blocked), Verdict::Deadlock);
    }

    #[test]
    fn a_program_never_exits_by_checkdead() {
        // The program ends when its main goroutine returns, not here.
        let s = IdleSnapshot {
            goroutines: 0,
            shutdown: true,
            ..stuck()
        };
        assert_eq!(checkdead(&s), Verdict::Deadlock);
    }

    #[test]
    fn a_turn_ends_the_run_for_the_strongest_reason() {
        assert_eq!(after_turn(&Turn::default()), None);
        let all = Turn {
            over_budget: true,
            runnable: false,
            reclaimed: true,
            retired: true,
            slice_over: true,
        };
        assert_eq!(after_turn(&all), Some(SliceEnd::OverBudget));
        // Over its budget with a G left to unwind: the run goes on (as
        // far as the P allows).
        let unwinding = Turn {
            runnable: true,
            ..all
        };
        assert_eq!(after_turn(&unwinding), Some(SliceEnd::Reclaimed));
        assert_eq!(
            after_turn(&Turn {
                over_budget: true,
                runnable: true,
                ..Turn::default()
            }),
            None
        );
        let t = Turn {
            over_budget: false,
            ..all
        };
        assert_eq!(after_turn(&t), Some(SliceEnd::Reclaimed));
        let t = Turn {
            reclaimed: false,
            ..t
        };
        assert_eq!(after_turn(&t), Some(SliceEnd::Retired));
        let t = Turn {
            retired: false,
            ..t
        };
        assert_eq!(after_turn(&t), Some(SliceEnd::SliceUsed));
    }

    #[test]
    fn panics_go_to_the_task_then_the_handler_then_the_program_or_actor() {
        assert_eq!(route_panic(true, true, true), PanicRoute::Task);
        assert_eq!(route_panic(true, false, false), PanicRoute::Task);
        assert_eq!(route_panic(false, true, true), PanicRoute::Handler);
        assert_eq!(route_panic(false, true, false), PanicRoute::Program);
        assert_eq!(route_panic(false, false, true), PanicRoute::Actor);
        assert_eq!(route_panic(false, false, false), PanicRoute::Actor);
    }
}
