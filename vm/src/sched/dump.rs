//! Goroutine dumps in Go's format: `goroutine N [state]:` and a traceback.
//!
//! Lua tracebacks of goroutines include lugo's own frames (the `[lugo]`
//! chunk of the stdlib, the `xpcall` at the base of every goroutine, the
//! `yield` that parks it); they are removed so users see their own code.

use crate::actor::Actor;
use crate::g::GStatus;

/// Name of the chunk that holds lugo's Lua-side code; its frames are hidden.
pub const LUGO_CHUNK: &str = "[lugo]";

/// Keeps the user's frames of a Lua traceback, one per line, tab-indented.
pub fn format_traceback(tb: &str) -> String {
    let mut lines: Vec<&str> = tb
        .lines()
        .filter(|l| !l.starts_with("stack traceback:"))
        .filter(|l| !l.contains(LUGO_CHUNK) && !l.contains("(...tail calls...)"))
        .collect();
    // The park's own yield on top, the goroutine's body (a C function,
    // or the `xpcall` of older bodies) at the bottom.
    if lines
        .first()
        .is_some_and(|l| l.trim_start().starts_with("[C]: in"))
    {
        lines.remove(0);
    }
    if lines
        .last()
        .is_some_and(|l| matches!(l.trim(), "[C]: in ?" | "[C]: in function 'xpcall'"))
    {
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
    let mut out = String::new();
    // Goroutines of actors other than the main one say whose they are.
    let whose = if actor.id == 1 {
        String::new()
    } else {
        format!(" (actor {})", actor.id)
    };
    if let Some((id, tb)) = current {
        out.push_str(&format!(
            "goroutine {id} [running]{whose}:\n{}",
            format_traceback(tb)
        ));
    }
    for g in actor.goroutines() {
        if current.is_some_and(|(id, _)| id == g.id) {
            continue;
        }
        // SAFETY: the caller runs on the M that owns the actor (or no M
        // runs it), and `g` is not the running G, so its thread is suspended.
        let tb = unsafe { crate::ffi::traceback(actor.main_thread, g.thread) };
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!(
            "goroutine {} [{}]{whose}:\n{}",
            g.id,
            state_word(g.status, g.reason),
            format_traceback(&tb)
        ));
    }
    Ok(out)
}

/// Every goroutine of `actor` as its queue tells, without its state (an
/// M holds it: a goroutine in a blocking call shows `[syscall]`): states
/// and wait reasons, no stacks.
pub fn dump_actor_unlocked(actor: &Actor) -> String {
    let whose = if actor.id == 1 {
        String::new()
    } else {
        format!(" (actor {})", actor.id)
    };
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
    fn hides_lugo_frames() {
        let tb = "stack traceback:\n\t[C]: in function 'coroutine.yield'\n\t[lugo]:40: in function 'recv'\n\t(...tail calls...)\n\tt.lua:3: in main chunk\n\t[C]: in function 'xpcall'\n\t[lugo]:12: in function <[lugo]:10>";
        assert_eq!(format_traceback(tb), "\tt.lua:3: in main chunk\n");
    }
}
