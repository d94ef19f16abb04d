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
//!
//! Every park has one claim ([`ParkWord`], Go's `selectDone` made general):
//! each waiter record of the park (a channel's, a select's cases, a
//! semaphore's, a timer, a socket's) carries the park's generation, and
//! whoever completes the wait first claims it: a channel partner, a timer,
//! the poller, or an interrupt (`runtime.interrupt`, `Task::interrupt`).
//! The losers skip their waiter, so a value is never handed to a G whose
//! wait was withdrawn: an interrupted sender did not send.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::ffi::LuaThread;
use crate::wake::{SelectSends, WaitReason, Wake};

/// The claim on the parks of the Gs of one slot of an actor's G table: a
/// generation counter, even while a park is open (its waiters may be
/// completed), odd once it has been claimed. It only grows, across the Gs
/// that use the slot in turn, so a waiter of an ended G never matches.
///
/// Invariants: only a claim turns it odd (a compare-and-swap from the
/// generation its waiter recorded, so exactly one claim per park wins),
/// or the end of its G ([`ParkWord::retire`]); only the M that is about
/// to resume the slot's G turns it even again ([`ParkWord::reopen`]),
/// when no waiter of the claimed park can still win. A waiter whose
/// generation is not the current even value is dead.
#[derive(Debug, Default)]
pub struct ParkWord(AtomicU64);

impl ParkWord {
    /// A word at generation 0, open.
    pub const fn new() -> ParkWord {
        ParkWord(AtomicU64::new(0))
    }

    /// The generation of the park the running G is about to make.
    #[inline]
    pub fn open_gen(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Claims park `gen`: true for exactly one caller while it is open.
    #[inline]
    pub fn claim(&self, gen: u64) -> bool {
        // AcqRel: the claimer's writes (a value handed over) are seen by
        // whoever reads the word after it, and the claim sees the park.
        self.0
            .compare_exchange(gen, gen + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }

    /// Claims whatever park is open now (an interrupt, which does not
    /// know the park's generation); false if it has been claimed.
    pub fn claim_open(&self) -> bool {
        let w = self.0.load(Ordering::Acquire);
        w & 1 == 0 && self.claim(w)
    }

    /// Whether park `gen` is still open: its waiters may be completed.
    #[inline]
    pub fn is_open(&self, gen: u64) -> bool {
        self.0.load(Ordering::Acquire) == gen
    }

    /// Opens the next park of a G about to be resumed: every waiter of its
    /// claimed parks stays dead. Only the M resuming the G calls this; no
    /// claim can race it (the last park, if any, has been claimed).
    #[inline]
    pub fn reopen(&self) {
        let w = self.0.load(Ordering::Relaxed);
        if w & 1 == 1 {
            self.0.store(w + 1, Ordering::Release);
        }
    }

    /// Closes the slot's park for good: its G has ended (it was running,
    /// so no waiter of its can still win), or its actor has (a waiter of
    /// its parked G is dead from now on: nothing is handed to it), and
    /// the next G of the slot starts past every generation this one used.
    pub fn retire(&self) {
        let w = self.0.load(Ordering::Relaxed);
        if w & 1 == 0 {
            self.0.store(w + 1, Ordering::Release);
        }
    }
}

/// Words per chunk of [`ParkWords`].
const WORDS_PER_CHUNK: usize = 64;

/// The claim words of an actor's G slots, by [`GKey`], in chunks that
/// never move or go away before the actor does: a waiter refers to its
/// G's word by address (8 bytes a slot, no allocation per G).
#[derive(Default)]
pub struct ParkWords {
    // Boxed: a chunk must not move when the vector grows.
    #[allow(clippy::vec_box)]
    chunks: Vec<Box<[ParkWord; WORDS_PER_CHUNK]>>,
}

impl ParkWords {
    /// The word of slot `key`, made if needed; its address is stable for
    /// as long as `self` lives.
    pub fn get(&mut self, key: GKey) -> &ParkWord {
        let (chunk, i) = (key / WORDS_PER_CHUNK, key % WORDS_PER_CHUNK);
        while self.chunks.len() <= chunk {
            self.chunks
                .push(Box::new(std::array::from_fn(|_| ParkWord::default())));
        }
        &self.chunks[chunk][i]
    }
}

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
    /// An interrupt has been asked for: a park that lands is claimed and
    /// woken with [`Wake::Interrupted`] at once.
    pub interrupted: Option<crate::preempt::Stop>,
    /// When it parked, while `Waiting` ([`crate::clock::coarse_secs`]).
    pub since: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A parked goroutine's Rust side is part of the per-G memory budget
    /// (about 1.4 KB with the Lua thread): keep the record small.
    #[test]
    fn one_claim_per_park() {
        let w = ParkWord::default();
        let gen = w.open_gen();
        assert!(w.is_open(gen));
        assert!(w.claim(gen));
        assert!(!w.claim(gen), "a park is claimed once");
        assert!(!w.claim_open(), "nothing is open until the G runs again");
        assert!(!w.is_open(gen));
        w.reopen();
        let next = w.open_gen();
        assert_ne!(next, gen);
        assert!(!w.claim(gen), "a waiter of an earlier park stays dead");
        assert!(w.is_open(next));
        w.reopen();
        assert_eq!(w.open_gen(), next, "an open park stays open");
        assert!(w.claim_open());
        assert!(!w.is_open(next));
        // The G ends after running (open): the slot's next G starts past
        // every generation it used.
        w.reopen();
        let last = w.open_gen();
        w.retire();
        w.reopen();
        assert!(w.open_gen() > last && !w.claim(last));
    }

    #[test]
    fn words_keep_their_place() {
        let mut words = ParkWords::default();
        let first: *const ParkWord = words.get(3);
        for key in 0..1000 {
            words.get(key);
        }
        assert!(std::ptr::eq(first, words.get(3)), "growing moved a word");
        assert!(!std::ptr::eq(words.get(64), words.get(63)));
    }

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
