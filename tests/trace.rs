//! The scheduler trace (`--trace`), the flight recorder
//! (`LUGO_DEBUG=flightrecorder=1`): what they write parses as Chrome's
//! trace-event JSON, every event has the fields the format requires, and
//! the runs, parks and wake-ups of a script are there, consistent (a
//! goroutine never runs on two Ps at once, an arrow never points back).

mod common;

use std::collections::HashMap;
use std::path::PathBuf;

use common::{lugo, run, TIMEOUT};
use serde_json::Value;

fn tmp(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("trace");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// The events of a trace file, each checked for the format's fields.
fn events(path: &PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(path).expect("the trace was written");
    let doc: Value = serde_json::from_str(&text).expect("the trace parses as JSON");
    let evs = doc["traceEvents"].as_array().expect("traceEvents").clone();
    for e in &evs {
        for field in ["name", "ph", "pid", "tid"] {
            assert!(e.get(field).is_some(), "{field} missing: {e}");
        }
        let ph = e["ph"].as_str().unwrap();
        if ph != "M" {
            assert!(e["ts"].as_f64().is_some(), "ts missing: {e}");
        }
        if ph == "X" {
            assert!(e["dur"].as_f64().is_some_and(|d| d >= 0.0), "dur: {e}");
        }
        if ph == "s" || ph == "f" {
            assert!(e["id"].as_u64().is_some(), "a flow has an id: {e}");
        }
    }
    evs
}

const SCRIPT: &str = r#"
local a, b = chan(), chan()
local wg = sync.waitgroup()
wg:add(2)
go(function() for i = 1, 50 do a:send(i) b:recv() end wg:done() end)
go(function() for i = 1, 50 do b:send(a:recv()) end wg:done() end)
go(function() local x = 0 for i = 1, 3e6 do x = x + i end end)
time.sleep(0.005)
wg:wait()
"#;

#[test]
fn a_trace_shows_runs_parks_and_wakes_consistently() {
    let path = tmp("small.json");
    let out = run(
        lugo()
            .args(["--procs", "2", "--trace"])
            .arg(&path)
            .args(["-e", SCRIPT]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let evs = events(&path);
    // Runs of each goroutine, in time order: never two at once.
    let mut runs: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
    let mut parked = 0;
    // The Ms' tracks (pid 2): an M runs one goroutine at a time.
    let mut per_m: HashMap<u64, Vec<(f64, f64)>> = HashMap::new();
    for e in evs.iter().filter(|e| e["ph"] == "X" && e["pid"] == 2) {
        let ts = e["ts"].as_f64().unwrap();
        per_m
            .entry(e["tid"].as_u64().unwrap())
            .or_default()
            .push((ts, ts + e["dur"].as_f64().unwrap()));
    }
    assert!(!per_m.is_empty(), "a track per M");
    for (m, rs) in &mut per_m {
        rs.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in rs.windows(2) {
            assert!(w[0].1 <= w[1].0 + 1e-3, "M{m} ran two at once: {w:?}");
        }
    }
    // The Ps' tracks (pid 1).
    for e in evs.iter().filter(|e| e["ph"] == "X" && e["pid"] == 1) {
        let g = e["args"]["g"].as_u64().expect("a run names its goroutine");
        let ts = e["ts"].as_f64().unwrap();
        runs.entry(g)
            .or_default()
            .push((ts, ts + e["dur"].as_f64().unwrap()));
        if e["args"]["end"]
            .as_str()
            .unwrap()
            .starts_with("parked: chan")
        {
            parked += 1;
        }
    }
    for (g, rs) in &mut runs {
        rs.sort_by(|a, b| a.0.total_cmp(&b.0));
        for w in rs.windows(2) {
            assert!(w[0].1 <= w[1].0 + 1e-3, "G{g} ran twice at once: {w:?}");
        }
    }
    for g in 1..=4 {
        assert!(runs.contains_key(&g), "G{g} ran");
    }
    assert!(parked >= 100, "the ping-pong parks: {parked}");
    // Each goroutine started by the main one has its `go` event.
    let gos: Vec<u64> = evs
        .iter()
        .filter(|e| e["cat"] == "go")
        .map(|e| e["args"]["g"].as_u64().unwrap())
        .collect();
    for g in 2..=4 {
        assert!(gos.contains(&g), "go G{g}");
    }
    // Wake arrows: a start and an end each, the end not before the start.
    let mut flows: HashMap<u64, (Option<f64>, Option<f64>)> = HashMap::new();
    for e in evs.iter().filter(|e| e["ph"] == "s" || e["ph"] == "f") {
        let f = flows.entry(e["id"].as_u64().unwrap()).or_default();
        let ts = Some(e["ts"].as_f64().unwrap());
        if e["ph"] == "s" {
            f.0 = ts
        } else {
            f.1 = ts
        }
    }
    assert!(
        flows.len() >= 100,
        "the ping-pong's wake-ups: {}",
        flows.len()
    );
    for (id, f) in flows {
        let (Some(s), Some(e)) = f else {
            panic!("flow {id} is not whole")
        };
        assert!(e >= s, "flow {id} points back");
    }
}

#[test]
fn the_flight_recorder_writes_on_a_deadlock_and_on_demand() {
    let dir = tmp("flight");
    std::fs::create_dir_all(&dir).unwrap();
    let out = run(
        lugo()
            .current_dir(&dir)
            .env("LUGO_DEBUG", "flightrecorder=1")
            .args(["-e", "go(function() end) time.sleep(0.002) chan():recv()"]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.code(), Some(2), "{}", out.describe());
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("lugo: flight recorder written to "))
        .unwrap_or_else(|| panic!("no flight recorder line:\n{}", out.stderr));
    let name = line.trim_start_matches("lugo: flight recorder written to ");
    let evs = events(&dir.join(name));
    assert!(
        evs.iter().any(|e| e["name"] == "G1"),
        "the main goroutine's runs"
    );
    // On demand, from the script.
    let path = tmp("ondemand.json");
    let src = format!(
        "local c = chan() go(function() c:send(1) end) c:recv() assert(runtime.flightrecord({:?}))",
        path.to_str().unwrap()
    );
    let out = run(
        lugo()
            .env("LUGO_DEBUG", "flightrecorder=1")
            .args(["-e", &src]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    assert!(events(&path).iter().any(|e| e["name"] == "G2"));
    // Off: it says so.
    let out = run(
        lugo().args(["-e", "runtime.flightrecord('x.json')"]),
        None,
        TIMEOUT,
    );
    assert!(
        out.stderr.contains("the flight recorder is off"),
        "{}",
        out.describe()
    );
}

#[test]
fn a_host_records_a_trace_with_the_builder() {
    let path = tmp("host.json");
    let _ = std::fs::remove_file(&path);
    {
        let rt = lugo::Runtime::builder()
            .procs(1)
            .trace(&path)
            .build()
            .unwrap();
        rt.exec("local c = chan() go(function() c:send(1) end) return c:recv()")
            .unwrap();
    }
    let evs = events(&path);
    assert!(
        evs.iter().any(|e| e["cat"] == "goroutine"),
        "the host's goroutines ran in it"
    );
}
