//! The runtime's monotonic clock: nanoseconds since the first reading, one
//! epoch for the whole process. Timers, sysmon, the CPU budget and
//! `time.now()` all read it. A leaf: it imports nothing of the crate.

use std::sync::OnceLock;
use std::time::Instant;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on the runtime's monotonic clock.
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
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
