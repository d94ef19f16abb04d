//! Goroutine dumps in Go's format: `goroutine N [state, how long]
//! {labels}:`, a traceback, and `created by ... in goroutine N at
//! file:line`.
//!
//! How long a goroutine has waited is shown from one second on (Go shows
//! it from one minute on, in minutes: lugo shows seconds below that), as
//! the runtime's coarse clock saw its park (`clock::coarse_secs`).
//!
//! Lua tracebacks of goroutines include lugo's own frames (the chunk of
//! the Lua face's own code, `Face::hidden_source`: `[lugo]` for the
//! stdlib; the C function at the base of every goroutine; the `yield`
//! that parks it); they are removed so users see their own code.

use crate::actor::{Actor, GInfo};
use crate::g::GStatus;

/// Keeps the user's frames of a Lua traceback, one per line, tab-indented:
/// drops those of the chunk `hidden` (the face's, `Face::hidden_chunk`;
/// empty: none).
pub fn format_traceback(tb: &str, hidden: &str) -> String {
    let mut lines: Vec<&str> = tb
        .lines()
        .filter(|l| !l.starts_with("stack traceback:"))
        .filter(|l| (hidden.is_empty() || !l.contains(hidden)) && !l.contains("(...tail calls...)"))
        .collect();
    // The park's own yield on top, the goroutine's body (a C function) at
    // the bottom.
    if lines
        .first()
        .is_some_and(|l| l.trim_start().starts_with("[C]: in"))
    {
        lines.remove(0);
    }
    if lines.last().is_some_and(|l| l.trim() == "[C]: in ?") {
        lines.pop();
    }
    let mut out = String::new();
    for l in lines {
        out.push('\t');
        out.push_str(l.trim_start());
        out.push('\n');
    }
    out
}

/// How long a G has waited, as the header says it (`2 minutes`, `5
/// seconds`), or `None` under a second: `since` and `now` are
/// [`crate::clock::coarse_secs`] readings.
pub fn waited(since: u32, now: u32) -> Option<String> {
    let s = now.saturating_sub(since);
    let (n, unit) = match s {
        0 => return None,
        1..=59 => (s, "second"),
        _ => (s / 60, "minute"),
    };
    Some(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }))
}

/// How long `g` has waited, if it waits (see [`waited`]).
pub fn waited_of(g: &GInfo, now: u32) -> Option<String> {
    (g.status == GStatus::Waiting)
        .then(|| waited(g.since, now))
        .flatten()
}

/// A goroutine's header line: `goroutine N [state, waited] {labels}
/// (actor A):`.
pub fn header(g: &GInfo, state: &str, now: u32, whose: &str) -> String {
    let mut h = format!("goroutine {} [{state}", g.id);
    if let Some(w) = waited_of(g, now) {
        h.push_str(", ");
        h.push_str(&w);
    }
    if g.leaked {
        h.push_str(", leaked");
    }
    h.push(']');
    if let Some(labels) = &g.labels {
        h.push_str(" {");
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                h.push_str(", ");
            }
            h.push_str(&format!("{k}={v:?}"));
        }
        h.push('}');
    }
    h.push_str(whose);
    h.push_str(":\n");
    h
}

/// Whether a place (`file:line`) is in lugo's own chunk `hidden` (empty:
/// none), which users are not shown.
pub fn is_lugo_site(site: &str, hidden: &str) -> bool {
    !hidden.is_empty() && site.starts_with(hidden)
}

/// The `created by` line of a goroutine (empty for one the host started
/// and one whose creator is lugo's own code, chunk `hidden`).
pub fn created_by(c: &crate::ffi::Creator, hidden: &str) -> String {
    if c.parent == 0 && c.function.is_empty() {
        return String::new();
    }
    let mut s = String::from("created by ");
    if c.function.is_empty() || is_lugo_site(&c.function, hidden) {
        s.push_str("lugo");
    } else if c.function == "main chunk" {
        s.push_str("main chunk");
    } else {
        s.push_str(&format!("function <{}>", c.function));
    }
    if c.parent != 0 {
        s.push_str(&format!(" in goroutine {}", c.parent));
    }
    if !c.at.is_empty() && !is_lugo_site(&c.at, hidden) {
        s.push_str(&format!(" at {}", c.at));
    }
    s.push('\n');
    s
}

/// One goroutine as `runtime.goroutines()` lists it.
pub struct Record {
    /// Its actor's id.
    pub actor: u64,
    /// What its actor's queue says of it.
    pub info: GInfo,
    /// Seconds it has waited (0 unless waiting).
    pub waited: u32,
    /// Who created it: read for the goroutines of the actor asking only
    /// (another actor's state is not this one's to read).
    pub creator: Option<crate::ffi::Creator>,
}

/// Every goroutine of the program, the calling actor's `me` with who
/// created each; in actor then id order. Runs on the M that owns `me`, in
/// a C function its running G called.
pub fn records(me: &Actor) -> Vec<Record> {
    let mut out = Vec::new();
    for a in me.runtime().actors() {
        // Only `me`'s state is held here.
        out.extend(records_of(&a, a.id == me.id));
    }
    out
}

/// The goroutines of `actor`, with who created each when `creators`:
/// then the caller holds the actor's state, on its M in a C function its
/// running G called, or on another thread while no M runs it
/// (`Actor::with_state`).
pub fn records_of(actor: &Actor, creators: bool) -> Vec<Record> {
    let now = crate::clock::coarse_secs_now();
    actor
        .goroutines()
        .into_iter()
        .map(|info| {
            let creator = if creators {
                // SAFETY: the caller holds the actor's state (the
                // contract): every G's thread is suspended but a running
                // one's, which is in the middle of the C function that
                // asked, and the main thread is idle (as `dump_actor`).
                unsafe { crate::ffi::creator(actor.main_thread, info.thread) }
            } else {
                None
            };
            let waited = match info.status {
                GStatus::Waiting => now.saturating_sub(info.since),
                _ => 0,
            };
            Record {
                actor: actor.id,
                info,
                waited,
                creator,
            }
        })
        .collect()
}

/// `runtime.ps()`'s listing of `recs`: a header, then a line each.
pub fn ps_listing(recs: &[Record], hidden: &str) -> String {
    let mut lines = vec![ps_header()];
    lines.extend(recs.iter().map(|r| ps_line(r, hidden)));
    lines.join("\n")
}

/// The header of `runtime.ps()`'s listing.
fn ps_header() -> String {
    format!(
        "{:<6} {:<5} {:<22} {:<32} LABELS",
        "ID", "ACTOR", "STATE", "CREATED BY"
    )
}

/// One goroutine's line of `runtime.ps()`'s listing (creators in lugo's
/// own chunk `hidden` not shown).
fn ps_line(r: &Record, hidden: &str) -> String {
    let mut state = state_word(r.info.status, r.info.reason).to_string();
    if r.waited > 0 {
        state.push_str(&format!(", {}s", r.waited));
    }
    let by = match &r.creator {
        None => "?".to_string(),
        Some(c) => {
            let mut by = match c.parent {
                0 => "-".to_string(),
                p => format!("goroutine {p}"),
            };
            if !c.at.is_empty() && !is_lugo_site(&c.at, hidden) {
                by.push_str(&format!(" at {}", c.at));
            }
            by
        }
    };
    let labels = r.info.labels.as_deref().unwrap_or(&[]);
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!(
        "{:<6} {:<5} {:<22} {:<32} {}",
        r.info.id,
        r.actor,
        state,
        by,
        labels.join(" ")
    )
    .trim_end()
    .to_string()
}

/// The state word Go prints for a G.
pub fn state_word(status: GStatus, reason: crate::wake::WaitReason) -> &'static str {
    match status {
        GStatus::Running => "running",
        GStatus::Runnable => "runnable",
        GStatus::Waiting => reason.as_str(),
    }
}

/// Every goroutine of `actor` as Go prints them, blocks separated by blank
/// lines. The G `current` (if any) is listed first as `running`, with the
/// traceback `current_tb` taken by the caller. Must run on the M that owns
/// the actor (or while no M runs it).
pub fn dump_actor(actor: &Actor, current: Option<(u64, &str)>) -> mlua::Result<String> {
    let face = actor.runtime().shared.config.face;
    let hidden = face.hidden_chunk();
    let whose = whose(actor);
    let now = crate::clock::coarse_secs_now();
    let gs = actor.goroutines();
    let mut out = String::new();
    // What follows a G's frames: what it waits on, who created it.
    let tail = |out: &mut String, g: &GInfo| {
        if g.status == GStatus::Waiting {
            // SAFETY: the caller runs on the M that owns the actor (or no M
            // runs it), and `g` is parked: its thread is suspended.
            let obj =
                unsafe { crate::ffi::wait_object(actor.main_thread, g.thread, face.describe_key) };
            if let Some(obj) = obj {
                out.push_str(&format!("waiting on {obj}\n"));
            }
        }
        // SAFETY: as for the traceback below; a running G's thread is in
        // the middle of the C function that asked (`runtime.stack`), with
        // its frames as they are, and the actor's main thread is idle.
        if let Some(c) = unsafe { crate::ffi::creator(actor.main_thread, g.thread) } {
            out.push_str(&created_by(&c, hidden));
        }
    };
    // The running G first.
    let running = current.and_then(|(id, tb)| gs.iter().find(|g| g.id == id).map(|g| (g, tb)));
    if let Some((g, tb)) = running {
        out.push_str(&header(g, "running", now, &whose));
        out.push_str(&format_traceback(tb, hidden));
        tail(&mut out, g);
    }
    for g in &gs {
        if current.is_some_and(|(id, _)| id == g.id) {
            continue;
        }
        // SAFETY: the caller runs on the M that owns the actor (or no M
        // runs it), and `g` is not the running G, so its thread is suspended.
        let tb = unsafe { crate::ffi::traceback(actor.main_thread, g.thread) };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&header(g, state_word(g.status, g.reason), now, &whose));
        out.push_str(&format_traceback(&tb, hidden));
        tail(&mut out, g);
    }
    Ok(out)
}

/// What the header of a G of `actor` says after the state: the actor,
/// unless it is the main one.
fn whose(actor: &Actor) -> String {
    if actor.id == 1 {
        String::new()
    } else {
        format!(" (actor {})", actor.id)
    }
}

/// Every goroutine of `actor` as its queue tells, without its state (an
/// M holds it: a goroutine in a blocking call shows `[syscall]`): states
/// and wait reasons, no stacks.
pub fn dump_actor_unlocked(actor: &Actor) -> String {
    let whose = whose(actor);
    let blocked = actor.blocking_gid();
    let mut out = String::new();
    for g in actor.goroutines() {
        if !out.is_empty() {
            out.push('\n');
        }
        let (state, why) = match g.id == blocked {
            true => ("syscall", "in a blocking call"),
            false => (
                state_word(g.status, g.reason),
                "its actor's state is in use",
            ),
        };
        out.push_str(&format!(
            "goroutine {} [{state}]{whose}:\n\t(no stack: {why})\n",
            g.id
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_as_go_says_them() {
        assert_eq!(waited(10, 10), None, "under a second: nothing");
        assert_eq!(waited(10, 11).as_deref(), Some("1 second"));
        assert_eq!(waited(0, 59).as_deref(), Some("59 seconds"));
        assert_eq!(waited(0, 60).as_deref(), Some("1 minute"));
        assert_eq!(
            waited(0, 179).as_deref(),
            Some("2 minutes"),
            "minutes round down"
        );
        assert_eq!(waited(20, 10), None, "a clock read before the park");
    }

    #[test]
    fn headers_and_creators() {
        let g = GInfo {
            id: 7,
            status: GStatus::Waiting,
            reason: crate::wake::WaitReason::ChanSend,
            thread: crate::ffi::LuaThread(std::ptr::null_mut()),
            since: 100,
            labels: Some(vec![("job".to_string(), "a \"b\"".to_string())].into()),
            leaked: false,
        };
        assert_eq!(
            header(&g, "chan send", 220, " (actor 2)"),
            "goroutine 7 [chan send, 2 minutes] {job=\"a \\\"b\\\"\"} (actor 2):\n"
        );
        let leaked = GInfo {
            leaked: true,
            labels: None,
            ..g.clone()
        };
        assert_eq!(
            header(&leaked, "chan send", 100, ""),
            "goroutine 7 [chan send, leaked]:\n"
        );
        let c = crate::ffi::Creator {
            parent: 1,
            function: "t.lua:3".into(),
            at: "t.lua:9".into(),
        };
        assert_eq!(
            created_by(&c, "[lugo]"),
            "created by function <t.lua:3> in goroutine 1 at t.lua:9\n"
        );
        let ours = crate::ffi::Creator {
            parent: 4,
            function: "[lugo]:300".into(),
            at: "[lugo]:301".into(),
        };
        assert_eq!(
            created_by(&ours, "[lugo]"),
            "created by lugo in goroutine 4\n"
        );
        assert_eq!(created_by(&crate::ffi::Creator::default(), "[lugo]"), "");
    }

    #[test]
    fn hides_lugo_frames() {
        let tb = "stack traceback:\n\t[C]: in function 'coroutine.yield'\n\t[lugo]:40: in function 'recv'\n\t(...tail calls...)\n\tt.lua:3: in main chunk\n\t[lugo]:12: in function <[lugo]:10>\n\t[C]: in ?";
        assert_eq!(format_traceback(tb, "[lugo]"), "\tt.lua:3: in main chunk\n");
        // A user's own xpcall at the bottom of the goroutine stays.
        let tb = "stack traceback:\n\tt.lua:3: in function <t.lua:2>\n\t[C]: in function 'xpcall'\n\t[C]: in ?";
        assert_eq!(
            format_traceback(tb, "[lugo]"),
            "\tt.lua:3: in function <t.lua:2>\n\t[C]: in function 'xpcall'\n"
        );
        // No face: nothing hidden but lugo's C frames.
        let tb = "stack traceback:\n\t[lugo]:1: in main chunk\n\t[C]: in ?";
        assert_eq!(format_traceback(tb, ""), "\t[lugo]:1: in main chunk\n");
    }
}
