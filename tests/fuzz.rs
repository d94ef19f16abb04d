//! A randomized hunt for crashes, escaped limits and lost values: Lua
//! programs generated from a grammar of lugo's calls (channels, select,
//! finalizers that send, callbacks and metamethods that park, generators,
//! relays between actors, timers) beside chaos actors that spin in C calls
//! and finalizers, hog memory, or make goroutines, channels and timers
//! without end. Each runs in its own `lugo --sandbox --memory-limit 16M
//! --cpu-budget 0.4` process, and must:
//!
//! - end by itself, with status 0 or 2 (a panic, the budget), never by a
//!   signal or with a Rust panic;
//! - stay within its limits: CPU time at most one budget per actor plus
//!   slack, peak RSS far below what the chaos asked for;
//! - account for every value (see `tests/fuzz/harness.lua`): none
//!   received twice or without a send, and when the program finished
//!   cleanly, every completed send received.
//!
//! About five seconds by default (two programs at a time);
//! `LUGO_FUZZ_SECS=600` hunts longer, `LUGO_FUZZ_SEED=n` replays one
//! program. A failure prints the seed and the program.

mod common;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use common::Measured;

const HARNESS: &str = include_str!("fuzz/harness.lua");
const BUDGET_S: f64 = 0.4;
/// A program that runs longer than this is hung.
const WALL_LIMIT: Duration = Duration::from_secs(30);
/// The most the whole process may use: the runtime (about 10 MB) and
/// the 16 MB the script may hold, with slack; the chaos asks for GBs.
const MAX_RSS_KB: i64 = 160 << 10;

const OPS: [&str; 11] = [
    "send",
    "recv",
    "select",
    "finalizer",
    "callback",
    "generator",
    "close",
    "sleep",
    "gosched",
    "timer",
    "send",
];

const CHAOS: [&str; 10] = [
    "spin",
    "spin_pcall",
    "spin_sort",
    "spin_gsub",
    "spin_gc",
    "hog",
    "goroutines",
    "channels",
    "timers",
    "deep",
];

/// A generated program and how many actors it starts (its CPU bound).
struct Program {
    source: String,
    actors: usize,
}

fn generate(rng: &mut fastrand::Rng) -> Program {
    let mut src = String::from(HARNESS);
    let nchans = rng.usize(2..6);
    let caps: Vec<String> = (0..nchans)
        .map(|_| rng.choice([0, 0, 1, 4, 16]).unwrap().to_string())
        .collect();
    writeln!(src, "make_chans({{ {} }})", caps.join(", ")).unwrap();
    let mut actors = 0;
    // Values sent before a channel is shared are kept for their sender:
    // a worker that sends goes first, relays (which share) come after.
    for w in 0..rng.usize(1..5) {
        let steps: Vec<String> = (0..rng.usize(3..25))
            .map(|_| {
                format!(
                    "{{ {:?}, {}, {}, {} }}",
                    rng.choice(OPS).unwrap(),
                    rng.usize(1..=nchans),
                    rng.usize(1..=nchans),
                    rng.usize(1..5)
                )
            })
            .collect();
        writeln!(src, "worker('w{w}', {{ {} }})", steps.join(", ")).unwrap();
        if rng.bool() {
            writeln!(src, "runtime.gosched()").unwrap();
        }
    }
    for _ in 0..rng.usize(0..3) {
        actors += 1;
        writeln!(
            src,
            "relay({}, {}, {}, {})",
            rng.usize(1..=nchans),
            rng.usize(1..=nchans),
            rng.usize(1..10),
            rng.choice([1 << 20, 2 << 20, 4 << 20]).unwrap()
        )
        .unwrap();
    }
    for _ in 0..rng.usize(0..4) {
        actors += 1;
        writeln!(
            src,
            "chaos({:?}, {})",
            rng.choice(CHAOS).unwrap(),
            rng.choice([512 << 10, 1 << 20, 2 << 20]).unwrap()
        )
        .unwrap();
    }
    writeln!(src, "finish()").unwrap();
    Program {
        source: src,
        actors,
    }
}

/// Runs `src` (as standard input) under the limits.
fn run(src: &str) -> Measured {
    let budget = BUDGET_S.to_string();
    let args = [
        "--sandbox",
        "--memory-limit",
        "16M",
        "--cpu-budget",
        &budget,
        "--procs",
        "2",
        "-",
    ];
    common::run_measured(common::lugo().args(args), src, WALL_LIMIT)
}

/// What a run must show (see the module comment).
fn check(p: &Program, r: &Measured) -> Result<(), String> {
    if let Some(sig) = r.signal {
        return Err(format!("killed by signal {sig}"));
    }
    if r.wall >= WALL_LIMIT {
        return Err(format!("hung: still running after {:?}", r.wall));
    }
    if r.code != Some(0) && r.code != Some(2) {
        return Err(format!("exit status {:?}", r.code));
    }
    for bad in ["internal error", "panicked at", "stack backtrace"] {
        if r.stderr.contains(bad) {
            return Err(format!("stderr shows a lugo bug ({bad})"));
        }
    }
    let cpu_bound = Duration::from_secs_f64(BUDGET_S * (p.actors + 1) as f64 + 3.0);
    if r.cpu > cpu_bound {
        return Err(format!("used {:?} of CPU, bound {cpu_bound:?}", r.cpu));
    }
    if r.max_rss_kb > MAX_RSS_KB {
        return Err(format!("peak RSS {} KB", r.max_rss_kb));
    }
    // The values' journeys.
    let mut t = HashSet::new();
    let (mut s, mut f) = (HashSet::new(), HashSet::new());
    let mut received: HashMap<&str, usize> = HashMap::new();
    let (mut lost, mut done) = (0, false);
    for line in r.stdout.lines() {
        let (kind, id) = line.split_once(' ').unwrap_or((line, ""));
        match kind {
            "T" => {
                t.insert(id);
            }
            "S" => {
                s.insert(id);
            }
            "F" => {
                f.insert(id);
            }
            "R" => *received.entry(id).or_default() += 1,
            "E" => lost += 1,
            "N" => {}
            "DONE" => done = true,
            other => return Err(format!("unexpected output line {other:?}")),
        }
    }
    if let Some((id, n)) = received.iter().find(|(_, &n)| n > 1) {
        return Err(format!("{id} received {n} times"));
    }
    if let Some(id) = received.keys().find(|id| !t.contains(*id)) {
        return Err(format!("{id} received but never sent"));
    }
    if let Some(id) = s.intersection(&f).next() {
        return Err(format!("{id} both sent and not sent"));
    }
    if let Some(id) = f.iter().find(|id| received.contains_key(*id)) {
        return Err(format!("{id} reported as not sent, and received"));
    }
    if r.code == Some(0) && !done {
        return Err("exit 0 without DONE".into());
    }
    if done {
        let missing: Vec<_> = s.iter().filter(|id| !received.contains_key(*id)).collect();
        if missing.len() > lost {
            return Err(format!(
                "{} sent values never received ({} reported lost): {:?}",
                missing.len(),
                lost,
                &missing[..missing.len().min(5)]
            ));
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn generated_programs_never_crash_escape_their_limits_or_lose_values() {
    let secs = env_u64("LUGO_FUZZ_SECS").unwrap_or(5);
    let only = env_u64("LUGO_FUZZ_SEED");
    let first = env_u64("LUGO_FUZZ_START").unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let next = std::sync::atomic::AtomicU64::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    let ran = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let seed = match only {
                    Some(s) if i == 0 => s,
                    Some(_) => return,
                    None if Instant::now() >= deadline && i > 0 => return,
                    None => first.wrapping_mul(1000).wrapping_add(i),
                };
                let p = generate(&mut fastrand::Rng::with_seed(seed));
                let r = run(&p.source);
                ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if let Err(why) = check(&p, &r) {
                    failures.lock().unwrap().push(format!(
                        "seed {seed}: {why}\n--- stderr (tail)\n{}\n--- program\n{}",
                        tail(&r.stderr),
                        &p.source[HARNESS.len()..]
                    ));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} programs failed (replay one with LUGO_FUZZ_SEED):\n{}",
        failures.len(),
        ran.into_inner(),
        failures.join("\n\n")
    );
    eprintln!("fuzz: {} programs", ran.into_inner());
}

fn tail(s: &str) -> &str {
    let cut = s.len().saturating_sub(3000);
    let cut = (cut..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    &s[cut..]
}
