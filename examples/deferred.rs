//! A host function answered later, from a host thread:
//! `Builder::deferred_function`.
//!
//!     cargo run --release --example deferred
//!
//! `fetch(url)` hands the call to a new host thread with a `Reply` and
//! returns at once; the calling goroutine parks (its actor runs other
//! goroutines) until the thread answers with `reply.ok(...)`, which
//! becomes `fetch`'s results, or `reply.err(...)`, which raises at the
//! caller as `error(message, 2)` would (the script catches it with
//! `pcall`). To show that every call is parked at the same time, the host
//! threads hold their answers until all the calls have arrived; one URL
//! is answered with an error and one is dropped without an answer.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use lugo::mlua::Table;
use lugo::{Reply, Runtime, Shutdown, Value};

const CALLS: usize = 12;

/// Starts `n` goroutines that each fetch a URL; returns one line per URL,
/// in order. Item 5 calls `fetch` from a Lua function, so the error
/// raised there names that call's line.
const SCRIPT: &str = r#"
local n = ...
local lines, done = {}, chan(n)
local function get(url)
  local status, body = fetch(url)
  return status, body
end
for i = 1, n do
  go(function()
    local url = ("https://example.com/item/%d"):format(i)
    local ok, status, body
    if i == 5 then
      ok, status, body = pcall(get, "https://example.com/missing")
    elseif i == 9 then
      ok, status, body = pcall(fetch, "https://example.com/hang-up")
    else
      ok, status, body = pcall(fetch, url)
    end
    lines[i] = ok and ("%d %s"):format(status, body) or ("error: " .. status)
    done:send(i)
  end)
end
for _ = 1, n do done:recv() end
return lines
"#;

/// Counts calls that have arrived; host threads wait for all of them.
struct Gate {
    arrived: Mutex<usize>,
    all_in: Condvar,
}

impl Gate {
    /// Marks one call arrived and waits (at most 2 s) for `CALLS`; the
    /// number that had arrived.
    fn arrive_and_wait(&self) -> usize {
        let mut n = self.arrived.lock().unwrap();
        *n += 1;
        self.all_in.notify_all();
        let (n, _) = self
            .all_in
            .wait_timeout_while(n, Duration::from_secs(2), |n| *n < CALLS)
            .unwrap();
        *n
    }
}

/// The host's answer to `fetch(url)`, from its own thread.
fn answer(url: String, reply: Reply, gate: &Gate) {
    let arrived = gate.arrive_and_wait();
    if arrived < CALLS {
        return reply.err(format!(
            "only {arrived} of {CALLS} calls were parked at once"
        ));
    }
    std::thread::sleep(Duration::from_millis(20)); // the request itself
    if url.ends_with("/missing") {
        reply.err(format!("fetch {url}: 404 not found"));
    } else if url.ends_with("/hang-up") {
        drop(reply); // no answer: the call fails
    } else {
        let body = format!("<item {}>", url.rsplit('/').next().unwrap_or(""));
        reply.ok([Value::from(200), Value::from(body)]);
    }
}

fn main() -> lugo::Result<()> {
    let gate = Arc::new(Gate {
        arrived: Mutex::new(0),
        all_in: Condvar::new(),
    });
    let g = gate.clone();
    let rt = Runtime::builder()
        .procs(1)
        .deferred_function("fetch", move |_, url: String, reply: Reply| {
            let gate = g.clone();
            std::thread::spawn(move || answer(url, reply, &gate));
            Ok(())
        })
        .build()?;

    let start = Instant::now();
    let script = rt
        .lua()
        .load(SCRIPT)
        .set_name("@fetcher.lua")
        .into_function()?;
    let lines: Table = rt.call(&script, CALLS)?;
    let took = start.elapsed();
    let lines: Vec<String> = lines.sequence_values().collect::<Result<_, _>>()?;
    for (i, l) in (1..).zip(&lines) {
        println!("goroutine {i:>2}: {l}");
    }
    println!("{CALLS} fetches from one actor on one P, all parked at once, done in {took:.0?}");

    assert_eq!(lines.len(), CALLS);
    assert_eq!(*gate.arrived.lock().unwrap(), CALLS);
    for (i, l) in (1..).zip(&lines) {
        match i {
            5 => assert_eq!(
                l,
                "error: fetcher.lua:5: fetch https://example.com/missing: 404 not found"
            ),
            9 => assert_eq!(
                l,
                "error: fetch: the host dropped the call without an answer"
            ),
            _ => assert_eq!(*l, format!("200 <item {i}>")),
        }
    }

    rt.shutdown(Shutdown::Wait)?;
    println!("shut down: every goroutine has ended");
    Ok(())
}
