//! What the embedding API costs, beside a baseline measured in the same run
//! on the same Lua state (machines here are shared: ratios, not times).
//!
//! | workload | lugo | baseline |
//! |---|---|---|
//! | `rt.call(f, i)`: a goroutine per call, the host waits | `Runtime::call` | a round trip to a Rust thread over `std::sync::mpsc` (and `f.call(i)` through mlua, no thread) |
//! | `rt.call(ask, i)`, which parks once: a server goroutine answers over a channel | `Runtime::call` | a round trip to a Rust thread over `std::sync::mpsc` |
//! | host sends N ints, a goroutine sums them | `Sender::send` into a lugo channel | a goroutine sends them to another over a lugo channel |
//! | goroutines send N ints, the host receives | `Receiver::recv` | as above |
//! | N calls of a deferred function answered by a host thread | `Reply::ok` | a round trip to a Rust thread over `std::sync::mpsc` (and a plain host function) |
//!
//! Run: `cargo bench --bench embedding` (prints one line per workload:
//! medians over 5 interleaved rounds, `-- --rounds N` for N, and the range
//! of the per-round ratios); `cargo bench --bench embedding -- to_host`
//! runs only the workloads named (call, call_park, to_goroutine, to_host,
//! deferred).

use std::time::{Duration, Instant};

use lugo::mlua::Function;
use lugo::{Runtime, Value};

fn per_op(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

/// The first value a chunk returned, as an integer.
fn first_int(v: lugo::mlua::MultiValue) -> Option<i64> {
    v.into_iter().next().and_then(|x| x.as_i64())
}

/// One row: its (workload, baseline) names and, per round, lugo's and the
/// baseline's ns/op.
type Row = ((String, String), Vec<(f64, f64)>);

thread_local! {
    /// Each row measured so far.
    static ROWS: std::cell::RefCell<Vec<Row>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records one round of a row: lugo's ns/op beside the baseline's, measured
/// in the same round.
fn report(name: &str, lugo_ns: f64, base_ns: f64, base: &str) {
    ROWS.with_borrow_mut(|rows| {
        let key = (name.to_string(), base.to_string());
        match rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push((lugo_ns, base_ns)),
            None => rows.push((key, vec![(lugo_ns, base_ns)])),
        }
    });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Prints each row: the medians over the rounds, and the median and range
/// of the per-round ratios (each round's two figures come from one run).
fn print_rows() {
    ROWS.with_borrow(|rows| {
        for ((name, base), v) in rows {
            let ratios: Vec<f64> = v.iter().map(|(l, b)| l / b).collect();
            let (lo, hi) = ratios
                .iter()
                .fold((f64::MAX, 0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
            println!(
                "{name:<34} {:>9.0} ns/op   {base:<28} {:>7.0} ns/op   ratio {:>6.2}x ({lo:.2}-{hi:.2}x, {} rounds)",
                median(v.iter().map(|x| x.0).collect()),
                median(v.iter().map(|x| x.1).collect()),
                median(ratios.clone()),
                v.len(),
            );
        }
    });
}

/// ns per round trip between two Rust threads over `std::sync::mpsc`: the
/// least a call that crosses to another thread and back can cost.
fn thread_round_trip() -> f64 {
    let (to_tx, to_rx) = std::sync::mpsc::channel::<i64>();
    let (back_tx, back_rx) = std::sync::mpsc::channel::<i64>();
    let echo = std::thread::spawn(move || {
        for x in to_rx {
            back_tx.send(x + 1).unwrap();
        }
    });
    let n = 20_000u64;
    let t = Instant::now();
    for i in 0..n as i64 {
        to_tx.send(i).unwrap();
        assert_eq!(back_rx.recv().unwrap(), i + 1);
    }
    let d = per_op(t.elapsed(), n);
    drop(to_tx);
    echo.join().unwrap();
    d
}

/// ns per call of `call(i)`, which must answer `i + 1`, over 20k calls.
fn time_calls(call: impl Fn(i64) -> i64) -> f64 {
    let n = 20_000u64;
    let t = Instant::now();
    for i in 0..n as i64 {
        assert_eq!(call(i), i + 1);
    }
    per_op(t.elapsed(), n)
}

fn call_round_trip(threads: f64) {
    let rt = Runtime::builder().procs(2).build().unwrap();
    rt.exec("function inc(x) return x + 1 end").unwrap();
    let inc: Function = rt.lua().globals().get("inc").unwrap();
    let lugo = time_calls(|i| rt.call(&inc, i).unwrap());
    let direct = time_calls(|i| inc.call(i).unwrap());
    report(
        "rt.call (goroutine per call)",
        lugo,
        threads,
        "thread round trip (mpsc)",
    );
    report(
        "rt.call (goroutine per call)",
        lugo,
        direct,
        "inc.call (mlua, no thread)",
    );
}

/// `rt.call` of a function that parks once: it asks a server goroutine
/// over an unbuffered channel and returns its answer.
fn call_that_parks(threads: f64) {
    let rt = Runtime::builder().procs(2).build().unwrap();
    rt.exec(
        "local req, resp = chan(), chan()
         go(function() for x in req:range() do resp:send(x + 1) end end)
         function ask(x) req:send(x) return resp:recv() end",
    )
    .unwrap();
    let ask: Function = rt.lua().globals().get("ask").unwrap();
    let lugo = time_calls(|i| rt.call(&ask, i).unwrap());
    report(
        "rt.call, parks once (a server G)",
        lugo,
        threads,
        "thread round trip (mpsc)",
    );
}

/// The same stream between two goroutines, in Lua.
fn lua_stream(rt: &Runtime, n: u64) -> f64 {
    let t = Instant::now();
    let v = rt
        .exec(format!(
            "local c, done = chan(128), chan()
             go(function() local s = 0 for v in c:range() do s = s + v end done:send(s) end)
             for i = 1, {n} do c:send(i) end
             c:close()
             return done:recv()"
        ))
        .unwrap();
    let d = t.elapsed();
    assert_eq!(first_int(v), Some((n * (n + 1) / 2) as i64));
    per_op(d, n)
}

fn host_to_goroutines() {
    let rt = Runtime::builder().procs(2).build().unwrap();
    let n = 200_000u64;
    let base = lua_stream(&rt, n);
    let (tx, rx) = rt.channel(128);
    rt.lua().globals().set("c", &rx).unwrap();
    drop(rx);
    let sum = rt
        .go(
            rt.lua()
                .load("local s = 0 for v in c:range() do s = s + v end return s")
                .into_function()
                .unwrap(),
            (),
        )
        .unwrap();
    let t = Instant::now();
    for i in 1..=n {
        tx.send(i as i64).unwrap();
    }
    tx.close().unwrap();
    let v = sum.wait().unwrap();
    let lugo = per_op(t.elapsed(), n);
    assert_eq!(first_int(v), Some((n * (n + 1) / 2) as i64));
    report(
        "host -> goroutine, cap 128",
        lugo,
        base,
        "goroutine -> goroutine",
    );
}

fn goroutines_to_host() {
    let rt = Runtime::builder().procs(2).build().unwrap();
    let n = 200_000u64;
    let base = lua_stream(&rt, n);
    let (tx, rx) = rt.channel(128);
    rt.lua().globals().set("c", &tx).unwrap();
    drop(tx);
    let t = Instant::now();
    rt.exec(format!(
        "go(function() for i = 1, {n} do c:send(i) end c:close() end)"
    ))
    .unwrap();
    let sum: i64 = rx.iter().map(|v| v.as_integer().unwrap()).sum();
    let lugo = per_op(t.elapsed(), n);
    assert_eq!(sum, (n * (n + 1) / 2) as i64);
    report(
        "goroutine -> host, cap 128",
        lugo,
        base,
        "goroutine -> goroutine",
    );
}

fn deferred_calls(threads: f64) {
    let (work_tx, work_rx) = std::sync::mpsc::channel::<(i64, lugo::Reply)>();
    let rt = Runtime::builder()
        .procs(2)
        .deferred_function("later_inc", move |_, x: i64, reply| {
            work_tx.send((x, reply)).ok();
            Ok(())
        })
        .function("plain_inc", |_, x: i64| Ok(x + 1))
        .build()
        .unwrap();
    let answerer = std::thread::spawn(move || {
        for (x, reply) in work_rx {
            reply.ok([Value::from(x + 1)]);
        }
    });
    let n = 20_000u64;
    let run = |f: &str| {
        let t = Instant::now();
        let v = rt
            .exec(format!(
                "local s = 0 for i = 1, {n} do s = s + {f}(i) end return s"
            ))
            .unwrap();
        let d = t.elapsed();
        assert_eq!(first_int(v), Some((n * (n + 3) / 2) as i64));
        per_op(d, n)
    };
    let base = run("plain_inc");
    let lugo = run("later_inc");
    report(
        "deferred call, host thread answers",
        lugo,
        threads,
        "thread round trip (mpsc)",
    );
    report(
        "deferred call, host thread answers",
        lugo,
        base,
        "plain host function",
    );
    drop(rt);
    answerer.join().unwrap();
}

fn main() {
    // `cargo test --benches` runs this with `--bench` absent: keep it quick.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    // `cargo bench --bench embedding -- NAME...`: only those workloads
    // (call, call_park, to_goroutine, to_host, deferred).
    let only: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with("--") && a.parse::<usize>().is_err())
        .collect();
    let want = |name: &str| only.is_empty() || only.contains(&name);
    // `--rounds N` (default 5): each workload N times, interleaved.
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(5usize);
    for _ in 0..rounds {
        // The thread round trip is the baseline of the calls only.
        let threads = if want("call") || want("call_park") || want("deferred") {
            thread_round_trip()
        } else {
            0.0
        };
        if want("call") {
            call_round_trip(threads);
        }
        if want("call_park") {
            call_that_parks(threads);
        }
        if want("to_goroutine") {
            host_to_goroutines();
        }
        if want("to_host") {
            goroutines_to_host();
        }
        if want("deferred") {
            deferred_calls(threads);
        }
    }
    print_rows();
}
