//! What a goroutine waits for and what it is woken with: the wait
//! reasons (Go's `waitReason`), the values in flight ([`Msg`]), the
//! results of a park ([`Wake`]). Plain data that crosses threads; the
//! channels, timers, semaphores and the poller make them, the FFI layer
//! pushes them onto a Lua stack, the G record holds them.

use std::sync::Arc;

use crate::portable::{Kept, Portable};

/// Why a G waits, in the words of Go's `runtime.Stack`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum WaitReason {
    /// Not waiting.
    None = 0,
    /// `ch:recv()` and `range`.
    ChanReceive = 1,
    /// `ch:send(v)`.
    ChanSend = 2,
    /// `chan.select` with cases.
    Select = 3,
    /// `chan.select()`: blocks forever.
    SelectNoCases = 4,
    /// `time.sleep`.
    Sleep = 5,
    /// `waitgroup:wait()`, `mutex:lock()`.
    Semacquire = 6,
    /// A socket operation (Go's `IO wait`).
    IoWait = 7,
    /// `handle:wait()` for an actor to end.
    ActorWait = 8,
}

impl Wake {
    /// The wake-up of a parked G stopped for `why`.
    pub fn stopped(why: crate::preempt::Stop) -> Wake {
        match why {
            crate::preempt::Stop::Leaked => Wake::Reclaimed,
            _ => Wake::Interrupted,
        }
    }
}

impl WaitReason {
    /// Every reason, indexed by its code.
    const ALL: [WaitReason; 9] = [
        WaitReason::None,
        WaitReason::ChanReceive,
        WaitReason::ChanSend,
        WaitReason::Select,
        WaitReason::SelectNoCases,
        WaitReason::Sleep,
        WaitReason::Semacquire,
        WaitReason::IoWait,
        WaitReason::ActorWait,
    ];

    /// The reason with this code, if any.
    pub fn from_code(code: i64) -> Option<WaitReason> {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The code carried in a park request.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// Go's wording.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitReason::None => "runnable",
            WaitReason::ChanReceive => "chan receive",
            WaitReason::ChanSend => "chan send",
            WaitReason::Select => "select",
            WaitReason::SelectNoCases => "select (no cases)",
            WaitReason::Sleep => "sleep",
            WaitReason::Semacquire => "semacquire",
            WaitReason::IoWait => "IO wait",
            WaitReason::ActorWait => "actor wait",
        }
    }
}

/// A value in flight through a channel or a wake: plain data, so it may
/// cross threads. Lua values live in the actor's values table meanwhile
/// (see [`crate::ffi`]); a `Slot` must be delivered or released.
#[derive(Clone, Debug)]
pub enum Msg {
    /// `nil`.
    Nil,
    /// A boolean.
    Boolean(bool),
    /// An integer.
    Integer(i64),
    /// A float (also the time sent by timers).
    Number(f64),
    /// Any other Lua value: its reference in the actor's values table.
    Slot(std::ffi::c_int),
    /// A value copied out of another actor (a shared channel).
    Copied(Arc<Portable>),
    /// A value buffered before its channel became shared: the original
    /// for its sender, the copy for other actors.
    Kept(Arc<Kept>),
}

impl PartialEq for Msg {
    fn eq(&self, other: &Msg) -> bool {
        match (self, other) {
            (Msg::Nil, Msg::Nil) => true,
            (Msg::Boolean(a), Msg::Boolean(b)) => a == b,
            (Msg::Integer(a), Msg::Integer(b)) => a == b,
            (Msg::Number(a), Msg::Number(b)) => a == b,
            (Msg::Slot(a), Msg::Slot(b)) => a == b,
            (Msg::Copied(a), Msg::Copied(b)) => Arc::ptr_eq(a, b),
            (Msg::Kept(a), Msg::Kept(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

/// What a G is resumed with.
#[derive(Debug)]
pub enum Wake {
    /// Nothing: a sleep ended, a send completed, a semaphore was acquired.
    Unit,
    /// A receive completed: the value and the ok flag.
    Recv(Msg, bool),
    /// A select case ran: its 1-based index and, for a receive, value and ok.
    Select {
        /// 1-based case index.
        case: usize,
        /// `Some` for a receive case.
        recv: Option<(Msg, bool)>,
    },
    /// The channel was closed under a parked sender: it raises `send on
    /// closed channel`. Carries the value a plain send could not deliver.
    SendClosed(Option<Msg>),
    /// A goroutine waiting on a socket: why it was woken.
    Io(IoWake),
    /// The G was interrupted while parked: its wait was withdrawn (its
    /// waiters are dead) and it raises the interrupt's error.
    Interrupted,
    /// As `Interrupted`, for a leaked G reclaimed: it raises `goroutine
    /// leaked`.
    Reclaimed,
}

/// The values of a parked select's send cases, by 1-based case number.
pub type SelectSends = Vec<(usize, Msg)>;

/// Why a goroutine waiting on a socket was woken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoWake {
    /// Its direction is ready: retry the operation.
    Ready = 1,
    /// Its deadline passed.
    Timeout = 2,
    /// The socket was closed (by another goroutine).
    Closed = 3,
    /// The socket's context ended (`conn:setcontext`).
    Canceled = 4,
}
