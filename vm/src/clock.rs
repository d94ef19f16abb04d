//! The runtime's monotonic clock: nanoseconds since the first reading, one
//! epoch for the whole process. Timers, sysmon, the CPU budget and
//! `time.now()` all read it. A leaf: it imports nothing of the crate.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Whole seconds on the clock at its last reading ([`coarse_secs`]).
static COARSE: AtomicU32 = AtomicU32::new(0);

/// Nanoseconds on the runtime's monotonic clock.
pub fn now_ns() -> u64 {
    let ns = EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64;
    let secs = (ns / 1_000_000_000) as u32;
    // Written about once a second (readers on other cores keep the line
    // shared); never backwards, whoever read the clock first.
    if COARSE.load(Ordering::Relaxed) < secs {
        COARSE.fetch_max(secs, Ordering::Relaxed);
    }
    ns
}

/// Whole seconds on the runtime's clock now (a reading, which keeps
/// [`coarse_secs`] fresh too): what a dump measures waits against.
pub fn coarse_secs_now() -> u32 {
    now_ns();
    coarse_secs()
}

/// Whole seconds on the runtime's clock as of its last reading: free to
/// read, as fresh as the clock's readers make it (sysmon reads it at every
/// tick while any M runs; an M waking sysmon from its deep sleep reads it
/// first). When a goroutine parked, for dumps (`[chan receive, 2
/// minutes]`).
#[inline]
pub fn coarse_secs() -> u32 {
    COARSE.load(Ordering::Relaxed)
}

/// Seconds on the runtime's monotonic clock (`time.now()`).
pub fn now_secs() -> f64 {
    now_ns() as f64 / 1e9
}

/// Converts a duration in seconds to nanoseconds, saturating; negative and
/// NaN durations are zero.
pub fn secs_to_ns(d: f64) -> u64 {
    if d.is_nan() || d <= 0.0 {
        0
    } else if d >= (u64::MAX / 2) as f64 / 1e9 {
        u64::MAX / 2
    } else {
        (d * 1e9) as u64
    }
}
