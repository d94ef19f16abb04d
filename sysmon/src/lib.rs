//! lugo-sysmon: the system monitor, modelled on Go's `runtime.sysmon`.
//!
//! A thread of its own, without a P, that never touches a Lua state. Each
//! round it reads the runtime's progress counters and decides (the policy,
//! [`policy::Monitor`]); the runtime acts (the mechanism, `lugo-vm`, behind
//! [`policy::Host`]). It sleeps in `recv_timeout` on its mailbox, so the
//! runtime can wake it early: an earlier timer, work arriving while every P
//! slept, shutdown.
//!
//! Duties this crate has today: preemption of goroutines that run too long
//! (retake), stopping goroutines whose actor is over its CPU budget,
//! handing off the Ps of blocking calls, firing timers that no idle M is
//! waiting for, polling the network when no M has, the GC policy, and
//! schedtrace (`LUGO_DEBUG=schedtrace=1000`). Deadlock detection runs in
//! the vm, where the last M to go idle knows it at once.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod policy;

use std::thread::JoinHandle;

use crossbeam_channel::RecvTimeoutError;
use lugo_vm::clock::now_ns;
use lugo_vm::Runtime;
use policy::{Host, Monitor, PState, Sleep};

/// The mechanism, over a real runtime.
struct VmHost {
    rt: Runtime,
}

impl Host for VmHost {
    fn now(&self) -> u64 {
        now_ns()
    }

    fn nprocs(&self) -> usize {
        self.rt.watched_procs()
    }

    fn p_state(&self, p: usize) -> PState {
        let (running, schedtick) = self.rt.p_state(p);
        PState {
            running,
            schedtick,
            syscall: self.rt.in_syscall(p),
            syscalltick: self.rt.syscalltick(p),
            runq: self.rt.runq_len(p),
            budget_end: Some(self.rt.p_budget_end(p)).filter(|&e| e != u64::MAX),
        }
    }

    fn preempt(&self, p: usize) {
        self.rt.preempt(p);
    }

    fn stop_over_budget(&self, p: usize) {
        self.rt.stop_over_budget(p);
    }

    fn handoff(&self, p: usize) {
        self.rt.handoff(p);
    }

    fn next_timer(&self) -> Option<u64> {
        self.rt.shared().timers.next_deadline()
    }

    fn timer_watched(&self) -> bool {
        self.rt.timer_watched()
    }

    fn run_timers(&self, now: u64) -> usize {
        self.rt.shared().timers.run_due(now)
    }

    fn schedtrace(&self, ms: u64) {
        eprintln!("{}", self.rt.schedtrace_line(ms));
    }

    fn actor_heaps(&self) -> Vec<policy::ActorHeap> {
        self.rt.actor_heaps()
    }

    fn request_gc(&self, id: u64, kind: policy::GcKind) {
        self.rt.request_gc(id, kind);
    }

    fn last_netpoll(&self) -> u64 {
        self.rt.last_netpoll()
    }

    fn netpoll(&self, now: u64) -> usize {
        self.rt.netpoll_nonblocking(now)
    }
}

/// Settings read from `LUGO_DEBUG` (comma-separated `key=value`, like
/// Go's `GODEBUG`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Debug {
    /// Print a schedtrace line every this many milliseconds (0: never).
    pub schedtrace_ms: u64,
}

impl Debug {
    /// Parses a `LUGO_DEBUG` value; unknown keys are ignored.
    pub fn parse(s: &str) -> Debug {
        let mut d = Debug::default();
        for kv in s.split(',') {
            if let Some(("schedtrace", v)) = kv.trim().split_once('=') {
                d.schedtrace_ms = v.trim().parse().unwrap_or(0);
            }
        }
        d
    }

    /// From the environment.
    pub fn from_env() -> Debug {
        std::env::var("LUGO_DEBUG")
            .map(|s| Debug::parse(&s))
            .unwrap_or_default()
    }
}

/// Starts the monitor thread for `rt`.
pub fn start(rt: Runtime, debug: Debug) -> JoinHandle<()> {
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    rt.set_monitor(tx);
    std::thread::Builder::new()
        .name("lugo-sysmon".into())
        .spawn(move || {
            let host = VmHost { rt };
            let mut mon = Monitor::new(now_ns(), debug.schedtrace_ms);
            while !host.rt.stopping() {
                let sleep = mon.round(&host);
                host.rt.count_sysmon_tick();
                let r = match sleep {
                    Sleep::For(d) => rx.recv_timeout(d),
                    Sleep::Deep(until) => {
                        host.rt.sysmon_sleeping(true);
                        // Work may have arrived between the round and now.
                        let r = if host.rt.any_p_running() {
                            Ok(())
                        } else {
                            match until {
                                Some(d) => rx.recv_timeout(d),
                                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                            }
                        };
                        host.rt.sysmon_sleeping(false);
                        r
                    }
                };
                if let Err(RecvTimeoutError::Disconnected) = r {
                    break;
                }
            }
        })
        .expect("cannot start the sysmon thread")
}

#[cfg(test)]
mod tests {
    use super::Debug;

    #[test]
    fn parses_lugo_debug() {
        assert_eq!(Debug::parse("schedtrace=1000").schedtrace_ms, 1000);
        assert_eq!(Debug::parse("x=1, schedtrace=250").schedtrace_ms, 250);
        assert_eq!(Debug::parse("schedtrace=bad").schedtrace_ms, 0);
        assert_eq!(Debug::parse("").schedtrace_ms, 0);
    }
}
