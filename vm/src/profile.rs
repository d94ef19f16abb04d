//! The CPU profile (`lugo --cpuprofile=FILE`): sysmon asks every M that
//! runs Lua for a sample about every 10 ms (as it asks for a preemption:
//! a flag in the M's running slot and a signal, whose handler arms the
//! count hook for one instruction, `crate::preempt`); the hook records the
//! running Lua thread's stack here, as one line of folded stacks (root
//! first, frames joined by `;`), and goes on without yielding. Works
//! across actors: every M is sampled alike.
//!
//! A frame reads as Lua names it: `name (file:line)` with the line its
//! function is defined at, `main chunk (file)`, `[C] name`; frames of the
//! Lua face's own chunk (`[lugo]`) and a goroutine's C body are left out.
//!
//! Invariants: nothing here runs while the profile is off but one atomic
//! load per sysmon round; the samples' lock is a leaf (the hook takes it
//! with no other lock held), so it takes no rank.

use std::ffi::CStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use mlua::ffi;
use rustc_hash::FxHashMap;

/// Whether samples are taken.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// When sysmon last asked for samples (runtime clock, ns).
static LAST: AtomicU64 = AtomicU64::new(0);

/// How often sysmon asks each running M for a sample.
pub const PERIOD_NS: u64 = 10_000_000;

/// Folded stacks and how many samples each got.
static SAMPLES: Mutex<Option<FxHashMap<String, u64>>> = Mutex::new(None);

/// Starts the profile (samples from now on).
pub fn start() {
    *SAMPLES.lock().unwrap_or_else(|e| e.into_inner()) = Some(FxHashMap::default());
    ACTIVE.store(true, Ordering::Release);
}

/// Whether the profile is on.
#[inline]
pub fn is_active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

/// Stops the profile; its folded stacks and counts, most sampled first.
pub fn stop() -> Vec<(String, u64)> {
    ACTIVE.store(false, Ordering::Release);
    let taken = SAMPLES.lock().unwrap_or_else(|e| e.into_inner()).take();
    let mut v: Vec<(String, u64)> = taken.unwrap_or_default().into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    v
}

/// Whether sysmon should ask for samples now (at most every
/// [`PERIOD_NS`]); the period starts again when it should. Only the
/// sysmon thread calls it.
pub(crate) fn due(now: u64) -> bool {
    let due = now.saturating_sub(LAST.load(Ordering::Relaxed)) >= PERIOD_NS;
    if due {
        LAST.store(now, Ordering::Relaxed);
    }
    due
}

/// One frame as a profile names it (see the module comment); `None` for a
/// frame left out.
fn frame_name(
    what: &[u8],
    src: &str,
    name: Option<&str>,
    linedefined: i32,
    hidden: &str,
) -> Option<String> {
    if !hidden.is_empty() && src.starts_with(hidden) {
        return None;
    }
    Some(match what {
        b"main" => format!("main chunk ({src})"),
        b"C" => match name {
            Some(n) => format!("[C] {n}"),
            None => return None,
        },
        _ => match name {
            Some(n) => format!("{n} ({src}:{linedefined})"),
            None => format!("function ({src}:{linedefined})"),
        },
    })
}

/// Records the stack of `l`, the running thread, as one sample.
///
/// # Safety
/// Called from lugo's hook on `l`, the running thread (`crate::preempt`).
/// `lua_getstack` and `lua_getinfo` with "Sn" read frames and push nothing
/// (inert); the strings they give live while their frames do, through the
/// copies made here.
pub(crate) unsafe fn record(l: *mut ffi::lua_State, hidden: &str) {
    if !is_active() {
        return;
    }
    let mut frames: Vec<String> = Vec::new();
    // SAFETY: the contract.
    unsafe {
        let mut ar: ffi::lua_Debug = std::mem::zeroed();
        let mut level = 0;
        while level < 64 && ffi::lua_getstack(l, level, &mut ar) != 0 {
            level += 1;
            if ffi::lua_getinfo(l, c"Sn".as_ptr(), &mut ar) == 0 {
                continue;
            }
            let src = CStr::from_ptr(ar.short_src.as_ptr()).to_string_lossy();
            let what = CStr::from_ptr(ar.what).to_bytes();
            let name = (!ar.name.is_null()).then(|| CStr::from_ptr(ar.name).to_string_lossy());
            if let Some(f) = frame_name(what, &src, name.as_deref(), ar.linedefined, hidden) {
                frames.push(f);
            }
        }
    }
    if frames.is_empty() {
        return;
    }
    frames.reverse();
    let line = frames.join(";");
    let mut s = SAMPLES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(map) = s.as_mut() {
        *map.entry(line).or_insert(0) += 1;
    }
}

/// The folded-stacks text of `samples` (`a;b;c 12` per line), what flame
/// graph tools read.
pub fn folded(samples: &[(String, u64)]) -> String {
    samples.iter().map(|(s, n)| format!("{s} {n}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_read_as_lua_names_them() {
        assert_eq!(
            frame_name(b"Lua", "t.lua", Some("hot"), 3, "[lugo]").as_deref(),
            Some("hot (t.lua:3)")
        );
        assert_eq!(
            frame_name(b"Lua", "t.lua", None, 9, "[lugo]").as_deref(),
            Some("function (t.lua:9)")
        );
        assert_eq!(
            frame_name(b"main", "t.lua", None, 0, "[lugo]").as_deref(),
            Some("main chunk (t.lua)")
        );
        assert_eq!(
            frame_name(b"C", "[C]", Some("pcall"), -1, "").as_deref(),
            Some("[C] pcall")
        );
        assert_eq!(
            frame_name(b"C", "[C]", None, -1, ""),
            None,
            "a goroutine's body"
        );
        assert_eq!(frame_name(b"Lua", "[lugo]", Some("go"), 50, "[lugo]"), None);
    }

    #[test]
    fn folded_lines() {
        let s = folded(&[("a;b".into(), 3), ("a".into(), 1)]);
        assert_eq!(s, "a;b 3\na 1\n");
    }
}
