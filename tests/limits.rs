//! A sandboxed script under a memory limit cannot make the runtime hold
//! memory beyond it: failing actor spawns, huge channel buffers, copies
//! piling up on a shared channel, deep tables, timers reset or stopped in
//! a loop, idle actors and goroutines without end, long lines on a socket.
//! Each case runs `lugo --sandbox --memory-limit 16M` and must report
//! `not enough memory` (or finish) with the process's peak RSS far below
//! what the script asked for (issue "Sound and bounded", items 4 and 5).
//! The process's own: the runtime threads' stacks and libraries are about
//! 10 MB, and the 16 MB the script may use come on top.

mod common;

use std::time::Duration;

/// The limit every case runs under.
const LIMIT: &str = "16M";
/// The most the whole process may use (the runtime itself is about 10 MB).
const MAX_RSS_KB: i64 = 120 << 10;

/// Runs `lugo --sandbox --memory-limit 16M -e src`, killed after 60 s.
fn run(src: &str) -> common::Measured {
    common::run_measured(
        common::lugo().args(["--sandbox", "--memory-limit", LIMIT, "-e", src]),
        "",
        Duration::from_secs(60),
    )
}

/// Runs `src`, which must print `expect` (a substring) and exit 0 within
/// the RSS bound.
fn check(name: &str, src: &str, expect: &str) {
    let r = run(src);
    assert!(
        r.code == Some(0) && r.stdout.contains(expect) && r.max_rss_kb < MAX_RSS_KB,
        "{name}: exit {:?}, peak RSS {} KB\nstdout: {}\nstderr: {}",
        r.code,
        r.max_rss_kb,
        r.stdout,
        r.stderr
    );
}

#[test]
fn failing_actor_spawns_leave_nothing_behind() {
    check(
        "40k failing spawns",
        "for i = 1, 40000 do assert(not pcall(actor.spawn, { function() end, memory = 1000 })) end \
         print('actors', runtime.stats().actors)",
        "actors\t1",
    );
}

#[test]
fn a_channel_buffer_is_charged_when_made() {
    check(
        "chan(1<<32)",
        "print(pcall(chan, 1 << 32))",
        "false\tchan: not enough memory",
    );
}

#[test]
fn copies_parked_on_a_shared_channel_are_charged_to_the_sender() {
    check(
        "strings on a shared channel",
        "local c = chan(1000) actor.spawn(function(c) chan():recv() end, c) \
         local s = ('x'):rep(1 << 20) local n = 0 \
         print(pcall(function() while true do c:send(s) n = n + 1 end end)) \
         assert(n < 16, n)",
        "not enough memory",
    );
}

#[test]
fn a_deep_table_is_refused_at_the_copy() {
    check(
        "25k-deep table to actor.spawn",
        "local t = {} for i = 1, 25000 do t = { t } end \
         print(pcall(actor.spawn, function() end, t))",
        "more than 1000 nested tables",
    );
}

#[test]
fn a_large_copy_is_refused_before_it_is_whole() {
    check(
        "a 64 MB table to actor.spawn",
        "local t = {} for i = 1, 300000 do t[i] = i end \
         local ok, e = pcall(actor.spawn, function() end, t, t, t, t) \
         print(ok, e)",
        "not enough memory",
    );
}

#[test]
fn timers_reset_or_stopped_in_a_loop_hold_no_memory() {
    check(
        "reset in a loop",
        "local t = time.timer(100) for i = 1, 2e6 do t:reset(100 + i) end print('done')",
        "done",
    );
    check(
        "made and stopped in a loop",
        "for i = 1, 1e6 do time.timer(1e6):stop() end print('done')",
        "done",
    );
    check(
        "pending timers are charged",
        // The timers are let go before printing: at the limit, `print`
        // itself could find no memory.
        "local ts = {} local ok, e = pcall(function() for i = 1, 1e7 do ts[i] = time.timer(1e6) end end) \
         ts = nil collectgarbage() print(ok, e)",
        "not enough memory",
    );
}

#[test]
fn idle_actors_and_goroutines_are_charged() {
    check(
        "actors without end",
        "local n = 0 \
         print(pcall(function() while true do actor.spawn(function() chan():recv() end) n = n + 1 end end)) \
         assert(n < 1000, n)",
        "not enough memory",
    );
    // The limit stops the script either way: `go` refuses (caught), or a
    // new goroutine cannot even start (its first call needs memory: an
    // uncaught error, which ends the program as in Go).
    let r = run("local c = chan() \
                 print(pcall(function() while true do go(function() c:recv() end) end end))");
    let caught = r.code == Some(0) && r.stdout.contains("not enough memory");
    let ended = r.code == Some(2) && r.stderr.starts_with("panic: not enough memory");
    assert!(
        (caught || ended) && r.max_rss_kb < MAX_RSS_KB,
        "goroutines without end: exit {:?}, peak RSS {} KB\nstdout: {}\nstderr: {}",
        r.code,
        r.max_rss_kb,
        r.stdout,
        r.stderr
    );
}

#[test]
fn a_sandbox_cannot_change_the_number_of_ps() {
    check(
        "gomaxprocs(256)",
        "print(pcall(runtime.gomaxprocs, 256)) print(runtime.gomaxprocs())",
        "cannot change the number of Ps",
    );
}

#[test]
fn an_actor_and_what_it_spawned_stay_within_its_limit() {
    check(
        "a tree of actors",
        r#"
        local src = [[
          local d, src = ...
          local t = {} for i = 1, 1e5 do t[i] = ("x"):rep(16) .. i end
          if d > 0 then
            for i = 1, 4 do
              pcall(actor.spawn, function(...) load((select(2, ...)))(...) end, d - 1, src)
            end
          end
          chan():recv()
        ]]
        for i = 1, 4 do
          pcall(actor.spawn, function(...) load((select(2, ...)))(...) end, 3, src)
        end
        time.sleep(1)
        print("memory", runtime.stats().memory <= 16 << 20)
        "#,
        "memory\ttrue",
    );
}
