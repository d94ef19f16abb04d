//! Goroutines: the G record and its states (what it waits for and is
//! woken with: [`crate::wake`]).
//!
//! States and who owns them (STYLE.md item 3):
//!
//! | status     | meaning                                  | owner                                  |
//! |------------|------------------------------------------|----------------------------------------|
//! | `Runnable` | on its actor's run queue or `runnext`    | the actor's queue lock                 |
//! | `Running`  | being resumed by the M that runs the actor | that M                               |
//! | `Waiting`  | parked; some waiter record refers to it  | whoever wins the waiter (one `ready`)  |
//!
//! A dead G is removed from its actor's table at once; a stale waiter that
//! still names it finds its slot empty or reused (the id differs) and drops
//! the wake.

use crate::ffi::LuaThread;
use crate::wake::{SelectSends, WaitReason, Wake};

/// Index of a G in its actor's table.
pub type GKey = usize;

/// Scheduling status of a G.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GStatus {
    /// Ready to run; on the run queue.
    Runnable,
    /// Being run by an M.
    Running,
    /// Parked until someone calls `ready`.
    Waiting,
}

/// One goroutine.
pub struct G {
    /// Program-wide id (`runtime.id()`); 1 is the main goroutine.
    pub id: u64,
    /// Its Lua thread, kept alive by the registry reference `thread_ref`.
    pub thread: LuaThread,
    /// Registry reference to the thread, released when the G ends.
    pub thread_ref: std::ffi::c_int,
    /// Before the first resume: how many arguments of the G's function
    /// wait on its thread's stack; 0 afterwards.
    pub nstart: std::ffi::c_int,
    /// Scheduling status.
    pub status: GStatus,
    /// Why it waits, while `Waiting`.
    pub reason: WaitReason,
    /// Results for the next resume, set by `ready`.
    pub wake: Option<Wake>,
    /// The values of a parked select's send cases, by case: all but the
    /// winner's are released when the G resumes. Boxed: most Gs never
    /// select, and a parked G should stay small.
    pub sel_sends: Option<Box<SelectSends>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parked goroutine's Rust side is part of the per-G memory budget
    /// (about 1.4 KB with the Lua thread): keep the record small.
    #[test]
    fn records_stay_small() {
        assert!(std::mem::size_of::<crate::wake::Msg>() <= 16);
        assert!(std::mem::size_of::<Option<Wake>>() <= 32);
        assert!(
            std::mem::size_of::<G>() <= 72,
            "G is {} bytes",
            std::mem::size_of::<G>()
        );
    }
}
