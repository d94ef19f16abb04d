//! Goroutine dumps in Go's format: `goroutine N [state]:` and a traceback.
//!
//! Lua tracebacks of goroutines include lugo's own frames (the chunk of
//! the Lua face's own code, `Face::hidden_source`: `[lugo]` for the
//! stdlib; the C function at the base of every goroutine; the `yield`
//! that parks it); they are removed so users see their own code.

use crate::actor::Actor;
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
    let hidden = actor.runtime().shared.config.face.hidden_chunk();
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
            format_traceback(tb, hidden)
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
            format_traceback(&tb, hidden)
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
