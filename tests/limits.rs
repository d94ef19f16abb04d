//! A sandboxed script under a memory limit cannot make the runtime hold
//! memory beyond it: failing actor spawns, huge channel buffers, copies
//! piling up on a shared channel, deep tables, timers reset or stopped in
//! a loop, idle actors and goroutines without end, long lines on a socket.
//! Each case runs `lugo --sandbox --memory-limit 16M` and must report
//! `not enough memory` (or finish) with the process's peak RSS far below
//! what the script asked for (issue "Sound and bounded", items 4 and 5).

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

/// The limit every case runs under.
const LIMIT: &str = "16M";
/// The most the whole process may use (the runtime itself is about 10 MB).
const MAX_RSS_KB: i64 = 120 << 10;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    max_rss_kb: i64,
}

/// Runs `lugo --sandbox --memory-limit 16M -e src`, killed after 60 s;
/// the peak RSS comes from `wait4`, which also reaps the child (clippy
/// cannot see that).
#[allow(clippy::zombie_processes)]
fn run(src: &str) -> Run {
    let mut child = common::lugo()
        .args(["--sandbox", "--memory-limit", LIMIT, "-e", src])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("lugo starts");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let readers = (
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut out, &mut s).unwrap();
            s
        }),
        std::thread::spawn(move || {
            let mut s = String::new();
            std::io::Read::read_to_string(&mut err, &mut s).unwrap();
            s
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let (status, rusage) = loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter.
        let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: `pid` is our child; WNOHANG returns at once.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut ru) };
        if r == pid {
            break (status, ru);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            128 + libc::WTERMSIG(status)
        },
        stdout: readers.0.join().unwrap(),
        stderr: readers.1.join().unwrap(),
        max_rss_kb: rusage.ru_maxrss,
    }
}

/// Runs `src`, which must print `expect` (a substring) and exit 0 within
/// the RSS bound.
fn check(name: &str, src: &str, expect: &str) {
    let r = run(src);
    assert!(
        r.code == 0 && r.stdout.contains(expect) && r.max_rss_kb < MAX_RSS_KB,
        "{name}: exit {}, peak RSS {} KB\nstdout: {}\nstderr: {}",
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
        "local ts = {} print(pcall(function() for i = 1, 1e7 do ts[i] = time.timer(1e6) end end))",
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
    check(
        "goroutines without end",
        "print(pcall(function() while true do go(function() chan():recv() end) end end))",
        "not enough memory",
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
