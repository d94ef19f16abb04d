//! lugo-vm: the scheduler of lugo.
//!
//! Vocabulary (see `DESIGN.md` section 1):
//!
//! | name  | here                  | what it is                                                       |
//! |-------|-----------------------|------------------------------------------------------------------|
//! | G     | [`g::G`]              | a goroutine: one Lua thread plus id, status and wait reason      |
//! | actor | [`actor::Actor`]      | one `mlua::Lua` state and its Gs; run by at most one M at a time  |
//! | P     | [`sched::p::P`]       | a scheduling context: a bounded run queue of actors and counters |
//! | M     | [`sched::m`]          | an OS thread running the schedule loop while it holds a P        |
//!
//! What blocks what (STYLE.md item 2):
//!
//! | primitive                                | stalls                         |
//! |------------------------------------------|--------------------------------|
//! | channel send/recv, select, sleep, sync, sockets | the calling G only (it parks) |
//! | a Rust `Mutex` inside this crate         | the M, for a few instructions  |
//! | a Lua loop that never parks              | its actor, until sysmon preempts it (10 ms, [`preempt`]) |
//! | a blocking call (`io.read`, `os.execute`) | its actor and its M; the P goes to a spare M ([`sched::syscall`]) |
//! | idle M waiting for work                  | nothing: it parks (one waits in the [`netpoll`]) |
//!
//! Layers, bottom first. A module names only modules of layers below
//! its own (`tests/layers.rs` checks every `crate::` path); the one way
//! up is a trait the layer below defines and the one above implements:
//!
//! | layer | modules | owns |
//! |-------|---------|------|
//! | base | [`clock`], [`mem`], [`gc`], [`park`], [`profile`], then [`preempt`] | the clock, memory accounts, GC requests, the park sentinels, the CPU profile's samples; the hooks that preempt, stop and sample |
//! | values | [`portable`], [`census`], [`wake`] | values that cross actors, the runtime's counts, what a G waits for and is woken with |
//! | Lua boundary, trace | [`ffi`], [`trace`] | every raw `lua_State` call of the scheduler; the scheduler trace's and flight recorder's events |
//! | records | [`g`], [`actor`] | the G record; actors, their run queues, [`actor::Runner`] (the way up) |
//! | wait objects | [`chan`], [`sema`], then [`select`], [`timer`], [`host`], then [`netpoll`] | what Gs and host threads park on; they ready Gs with [`actor::GRef::ready`] |
//! | leak probe | [`leak`] | an actor's side of a leak check: one collection of its heap that tells which parked Gs nothing reaches |
//! | scheduler | [`sched`] | Ps, Ms, run queues, idle Ms, checkdead, the [`Runtime`], and the mechanism sysmon drives (`lugo_sysmon::policy::Mechanism`, implemented in `sched::monitor`; this crate starts the monitor) |
//! | embedder | [`endpoint`] | channel ends a host holds |
//!
//! Park/ready protocol: a G that must wait registers a waiter (in a channel,
//! a timer, a semaphore) and then yields to the M with the private
//! [`park::sched`] sentinel. Whoever completes the wait calls
//! [`actor::GRef::ready`] with a [`wake::Wake`] carrying the results; the M
//! resumes the G with them. A wake may arrive before the G has finished
//! yielding (a timer on another thread); the M then re-queues it at once.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(clippy::undocumented_unsafe_blocks)]
#![warn(missing_docs)]

pub mod actor;
pub mod census;
pub mod chan;
pub mod clock;
pub mod endpoint;
pub mod ffi;
pub mod g;
pub mod gc;
pub mod host;
pub mod leak;
pub mod lockrank;
pub mod mem;
pub mod netpoll;
pub mod park;
pub mod portable;
pub mod preempt;
pub mod profile;
pub mod sched;
pub mod select;
pub mod sema;
pub mod timer;
pub mod trace;
pub mod wake;

pub use actor::{Actor, GRef};
pub use chan::Chan;
pub use g::GStatus;
pub use host::Outcome;
pub use sched::{Config, HostFn, HostFunction, HostKind, Runtime};
pub use wake::{Msg, WaitReason, Wake};
