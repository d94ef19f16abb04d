//! The private sentinels of the park protocol.
//!
//! A goroutine talks to its M by yielding `SCHED, kind` from its own Lua
//! thread. `SCHED` is a light userdata whose address is private to this
//! crate, so user code cannot forge a scheduler request. Rust functions
//! behind the stdlib return `ERR, message` to ask their Lua half to raise a
//! plain string error at the caller's level (mlua would otherwise raise a
//! userdata error that `string.find` cannot read).

use mlua::{ffi, LightUserData};

static SCHED_TAG: u8 = 0;
static ERR_TAG: u8 = 0;

/// The scheduler-request sentinel.
pub fn sched() -> LightUserData {
    LightUserData(&SCHED_TAG as *const u8 as *mut _)
}

/// The raise-this-error sentinel.
pub fn err() -> LightUserData {
    LightUserData(&ERR_TAG as *const u8 as *mut _)
}

/// Kinds of scheduler request, the second value of a `SCHED` yield.
/// Values at or above [`KIND_PARK`] are parks; the wait reason is
/// `kind - KIND_PARK` (see [`crate::wake::WaitReason::from_code`]).
pub const KIND_GOSCHED: i64 = 1;
/// End the goroutine (it called `os.exit`).
pub const KIND_EXIT: i64 = 2;
/// A goroutine finished with an uncaught error: the second value is the
/// formatted message and traceback.
pub const KIND_PANIC: i64 = 3;
/// A preemption forwarded out of a user's nested coroutine.
pub const KIND_PREEMPT: i64 = 4;
/// First park kind.
pub const KIND_PARK: i64 = 16;

/// Message of the error raised by a send on a closed channel.
pub const SEND_ON_CLOSED: &str = "send on closed channel";

/// An error message with a static address: pushed as a light userdata
/// after `ERR` where pushing a string could fail (the scheduler, on a
/// suspended thread); the continuation that raises it makes the string.
pub struct StaticMsg(pub &'static str);

/// [`SEND_ON_CLOSED`] as a [`StaticMsg`].
pub static SEND_ON_CLOSED_MSG: StaticMsg = StaticMsg(SEND_ON_CLOSED);

/// The error a goroutine interrupted while parked raises at its park
/// (the stop's message: `crate::preempt::Stop::Interrupt`).
pub static INTERRUPTED_MSG: StaticMsg = StaticMsg("interrupted");

/// The error a leaked goroutine reclaimed raises at its park
/// (`crate::preempt::Stop::Leaked`).
pub static LEAKED_MSG: StaticMsg = StaticMsg("goroutine leaked");

/// The scheduler found no room on a Lua stack to build a value.
pub static STACK_OVERFLOW_MSG: StaticMsg = StaticMsg("stack overflow (receiving a value)");

/// Pushes `m` as a light userdata (inert).
///
/// # Safety
/// `l` is a valid thread with a free stack slot.
pub unsafe fn push_static(l: *mut ffi::lua_State, m: &'static StaticMsg) {
    // SAFETY: `l` is a valid thread with a free stack slot (the caller's
    // contract); pushing a light userdata is inert. The address is of a
    // `'static` message, valid whenever the continuation reads it.
    unsafe { ffi::lua_pushlightuserdata(l, m as *const StaticMsg as *mut std::ffi::c_void) };
}
