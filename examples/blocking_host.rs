//! A host function that blocks its thread (a database query, say) is
//! registered with `Builder::blocking_function`: while it waits, sysmon
//! hands its P to a spare thread, so other actors and timers go on.
//!
//!     cargo run --release --example blocking_host
//!
//! The runtime has one P. A ticker in its own actor counts ticks through
//! the host function `tick`; `slow_query` sleeps 300 ms and returns how
//! many ticks happened meanwhile. The same body registered with
//! `Builder::function` (`slow_query_plain`) holds the only P, and the
//! ticker stops; as a blocking function it does not. Last, two actors
//! call `slow_query` at once and both calls are in flight together.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lugo::mlua::Function;
use lugo::{Runtime, Shutdown, Value};

const QUERY_TIME: Duration = Duration::from_millis(300);

/// What the host counts: ticks of the ticker actor, queries in flight
/// and the most ever in flight at once.
#[derive(Default)]
struct Counters {
    ticks: AtomicU64,
    in_flight: AtomicU64,
    max_in_flight: AtomicU64,
}

impl Counters {
    /// The query: blocks the calling thread, then returns its rows and
    /// the ticks that happened while it waited.
    fn query(&self, q: &str) -> (String, u64) {
        let n = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(n, Ordering::SeqCst);
        let before = self.ticks.load(Ordering::SeqCst);
        std::thread::sleep(QUERY_TIME);
        let ticked = self.ticks.load(Ordering::SeqCst) - before;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        (format!("rows for {q:?}"), ticked)
    }
}

/// Runs in its own actor: calls `tick()` every 10 ms until `stop` closes.
const TICKER: &str = r#"
local stop = ...
local t = time.ticker(0.01)
while chan.select({ "recv", t.c }, { "recv", stop }) == 1 do
  tick()
end
t:stop()
"#;

/// Runs in each of two actors: one query, its rows sent to the host.
const CLIENT: &str = r#"
local name, out = ...
out:send(name .. ": " .. slow_query("select * from " .. name))
"#;

fn main() -> lugo::Result<()> {
    let counters = Arc::new(Counters::default());
    let (c1, c2, c3) = (counters.clone(), counters.clone(), counters.clone());
    let rt = Runtime::builder()
        .procs(1)
        .function("tick", move |_, ()| {
            c1.ticks.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
        .function("slow_query_plain", move |_, q: String| Ok(c2.query(&q)))
        .blocking_function("slow_query", move |_, q: String| Ok(c3.query(&q)))
        .build()?;

    let (stop_tx, stop_rx) = rt.channel(0);
    let ticker = rt.spawn_actor(TICKER, &stop_rx)?;
    let deadline = Instant::now() + Duration::from_secs(2);
    while counters.ticks.load(Ordering::SeqCst) < 3 {
        assert!(Instant::now() < deadline, "the ticker did not start");
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("ticker actor running (one P, ticks every 10 ms)");

    // 1. Registered as a plain function, the query holds the only P.
    let plain: Function = rt.lua().globals().get("slow_query_plain")?;
    let (rows, ticked): (String, u64) = rt.call(&plain, "users")?;
    println!("slow_query_plain: {rows}; ticks meanwhile: {ticked}");
    assert_eq!(ticked, 0, "a plain host function holds its P");

    // 2. As a blocking function, its P is handed off and the ticker goes on.
    let blocking: Function = rt.lua().globals().get("slow_query")?;
    let (rows, ticked): (String, u64) = rt.call(&blocking, "users")?;
    println!("slow_query:       {rows}; ticks meanwhile: {ticked}");
    assert!(ticked > 0, "the ticker stopped during a blocking call");

    // 3. Two actors query at once: the calls overlap even with one P.
    counters.max_in_flight.store(0, Ordering::SeqCst);
    let (out_tx, out_rx) = rt.channel(2);
    let start = Instant::now();
    let clients = ["orders", "invoices"]
        .into_iter()
        .map(|name| rt.spawn_actor(CLIENT, (name, &out_tx)))
        .collect::<lugo::Result<Vec<_>>>()?;
    let mut answers: Vec<String> = (0..clients.len())
        .map(|_| match out_rx.recv() {
            Ok(Some(Value::String(s))) => String::from_utf8_lossy(&s).into_owned(),
            other => panic!("expected an answer, got {other:?}"),
        })
        .collect();
    let took = start.elapsed();
    for c in &clients {
        c.wait()?;
    }
    answers.sort();
    for a in &answers {
        println!("  {a}");
    }
    let max = counters.max_in_flight.load(Ordering::SeqCst);
    println!(
        "two actors' queries: {max} in flight at once, both done in {took:.0?} \
         (one query takes {QUERY_TIME:?})"
    );
    assert_eq!(
        answers,
        [
            r#"invoices: rows for "select * from invoices""#,
            r#"orders: rows for "select * from orders""#
        ]
    );
    assert_eq!(max, 2, "the two blocking calls did not overlap");

    stop_tx.close()?;
    ticker.wait()?;
    drop((stop_tx, stop_rx, out_tx, out_rx));
    rt.shutdown(Shutdown::Wait)?;
    println!(
        "ticker stopped after {} ticks; shut down",
        counters.ticks.load(Ordering::SeqCst)
    );
    Ok(())
}
