//! lugo-sysmon: the system monitor, modelled on Go's `runtime.sysmon`.
//!
//! A thread of its own, without a P, that never touches a Lua state. Each
//! round it reads the runtime's progress counters and decides (the policy,
//! [`policy::Monitor`]); the runtime acts (the mechanism: the trait
//! [`policy::Mechanism`], defined here and implemented by `lugo-vm`, which
//! starts this thread; this crate depends on no runtime). It sleeps in
//! `recv_timeout` on its mailbox, so the runtime can wake it early: an
//! earlier timer, work arriving while every P slept, shutdown.
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

pub mod leaks;
pub mod policy;

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use policy::{Mechanism, Monitor, Sleep};

/// Settings read from `LUGO_DEBUG` (comma-separated `key=value`, like
/// Go's `GODEBUG`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Debug {
    /// Print a schedtrace line every this many milliseconds (0: never).
    pub schedtrace_ms: u64,
    /// Follow each schedtrace line with one line per P and per goroutine
    /// (`scheddetail=1`, Go's).
    pub scheddetail: bool,
    /// Keep the scheduler's last events, written on a panic, a deadlock,
    /// SIGQUIT or on demand (`flightrecorder=1`; `lugo_vm::trace`).
    pub flightrecorder: bool,
    /// Look for leaked goroutines every `leakcheck_ms` and report each new
    /// one on stderr (`leakcheck=1`), and end them too (`leakcheck=2`:
    /// `runtime.reclaim()`); 0: only when asked (`runtime.leaks()`).
    pub leakcheck: u8,
    /// The period of `leakcheck` (`leakcheckperiod=ms`; 1000 if unset).
    pub leakcheck_ms: u64,
}

impl Debug {
    /// Parses a `LUGO_DEBUG` value; unknown keys are ignored.
    pub fn parse(s: &str) -> Debug {
        let mut d = Debug::default();
        for kv in s.split(',') {
            match kv.trim().split_once('=') {
                Some(("schedtrace", v)) => d.schedtrace_ms = v.trim().parse().unwrap_or(0),
                Some(("scheddetail", v)) => d.scheddetail = v.trim() == "1",
                Some(("flightrecorder", v)) => d.flightrecorder = v.trim() == "1",
                Some(("leakcheck", v)) => d.leakcheck = v.trim().parse().unwrap_or(0).min(2),
                Some(("leakcheckperiod", v)) => d.leakcheck_ms = v.trim().parse().unwrap_or(0),
                _ => {}
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

/// Starts the monitor thread over `mech`. A message on `wake` ends a
/// sleep early; the thread exits once `mech` is stopping or every sender
/// of `wake` is gone.
pub fn start<M: Mechanism + Send + 'static>(
    mech: M,
    wake: Receiver<()>,
    debug: Debug,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("lugo-sysmon".into())
        .spawn(move || {
            let mut mon = Monitor::new(mech.now(), debug.schedtrace_ms);
            if debug.leakcheck > 0 {
                let every = match debug.leakcheck_ms {
                    0 => 1000,
                    ms => ms,
                };
                mon = mon.with_leakcheck(mech.now(), every, debug.leakcheck == 2);
            }
            while !mech.stopping() {
                let sleep = mon.round(&mech);
                mech.count_round();
                let r = match sleep {
                    Sleep::For(d) => wake.recv_timeout(d),
                    Sleep::Deep(until) => {
                        mech.deep_sleep(true);
                        // Work may have arrived between the round and now.
                        let r = if mech.any_running() {
                            Ok(())
                        } else {
                            match until {
                                Some(d) => wake.recv_timeout(d),
                                None => wake.recv().map_err(|_| RecvTimeoutError::Disconnected),
                            }
                        };
                        mech.deep_sleep(false);
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
        let d = Debug::parse("schedtrace=100,scheddetail=1");
        assert!(d.scheddetail && d.schedtrace_ms == 100);
        assert!(!Debug::parse("scheddetail=0").scheddetail);
        let d = Debug::parse("leakcheck=2,leakcheckperiod=50");
        assert_eq!((d.leakcheck, d.leakcheck_ms), (2, 50));
        assert_eq!(Debug::parse("leakcheck=9").leakcheck, 2);
        assert_eq!(Debug::parse("leakcheck=x").leakcheck, 0);
    }
}
