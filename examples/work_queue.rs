//! The host feeds work to goroutines over a channel and collects their
//! results over another.
//!
//!     cargo run --release --example work_queue
//!
//! `Runtime::channel` makes a lugo channel and gives the host its two
//! ends; the host hands one end of each to Lua as a global. Four worker
//! goroutines (`Runtime::go`) range over `jobs` and send to `results`. A
//! host thread sends the jobs, numbers and tables (`Value::map`), then
//! closes `jobs`; the main thread receives every result meanwhile (with
//! both channels bounded, sending everything before receiving anything
//! would leave host and workers waiting on each other).

use std::collections::BTreeMap;

use lugo::mlua::Function;
use lugo::{Runtime, Shutdown, Value};

const WORKERS: i64 = 4;
const NUMBERS: i64 = 40;

/// A worker: `job` is a number n (answer n * n) or a table
/// `{ id =, op = "sum" | "join", args = { ... } }`.
const WORKER: &str = r#"
return function(w)
  local done = 0
  for job in jobs:range() do
    local id, value
    if type(job) == "number" then
      id, value = job, job * job
    elseif job.op == "sum" then
      local s = 0
      for _, x in ipairs(job.args) do s = s + x end
      id, value = job.id, s
    elseif job.op == "join" then
      id, value = job.id, table.concat(job.args, job.sep or " ")
    else
      id, value = job.id, "unknown op " .. tostring(job.op)
    end
    time.sleep(0.001) -- some work; other workers take jobs meanwhile
    results:send({ job = id, worker = w, value = value })
    done = done + 1
  end
  return done
end
"#;

/// The table jobs: ids after the numbers.
fn table_jobs() -> Vec<Value> {
    vec![
        Value::map([
            ("id", Value::from(NUMBERS + 1)),
            ("op", Value::from("sum")),
            ("args", Value::array([1.5, 2.5, 3.25])),
        ]),
        Value::map([
            ("id", Value::from(NUMBERS + 2)),
            ("op", Value::from("join")),
            ("args", Value::array(["host", "to", "goroutine"])),
            ("sep", Value::from("->")),
        ]),
        Value::map([
            ("id", Value::from(NUMBERS + 3)),
            ("op", Value::from("shuffle")),
        ]),
    ]
}

fn main() -> lugo::Result<()> {
    let rt = Runtime::builder().procs(2).build()?;
    let (jobs_tx, jobs_rx) = rt.channel(16);
    let (res_tx, res_rx) = rt.channel(16);
    rt.lua().globals().set("jobs", &jobs_rx)?;
    rt.lua().globals().set("results", &res_tx)?;

    let worker: Function = rt.lua().load(WORKER).set_name("=worker").eval()?;
    let workers = (1..=WORKERS)
        .map(|w| rt.go(worker.clone(), w))
        .collect::<lugo::Result<Vec<_>>>()?;

    let tables = table_jobs();
    let total = NUMBERS as usize + tables.len();
    let mut got: BTreeMap<i64, (i64, Value)> = BTreeMap::new();
    std::thread::scope(|s| -> lugo::Result<()> {
        let producer = s.spawn(|| -> lugo::Result<()> {
            for n in 1..=NUMBERS {
                jobs_tx.send(n)?;
            }
            for t in tables {
                jobs_tx.send(t)?;
            }
            jobs_tx.close()
        });
        for _ in 0..total {
            let r = res_rx.recv()?.expect("results closed early");
            let job = r.get("job").and_then(Value::as_integer).expect("job id");
            let worker = r.get("worker").and_then(Value::as_integer).expect("worker");
            let value = r.get("value").cloned().unwrap_or(Value::Nil);
            assert!(
                got.insert(job, (worker, value)).is_none(),
                "job {job} twice"
            );
        }
        producer.join().expect("producer panicked")
    })?;

    // Every job was answered once, and rightly.
    assert_eq!(got.len(), total);
    for n in 1..=NUMBERS {
        assert_eq!(got[&n].1, Value::Integer(n * n), "job {n}");
    }
    assert_eq!(got[&(NUMBERS + 1)].1, Value::Number(7.25));
    assert_eq!(got[&(NUMBERS + 2)].1.as_str(), Some("host->to->goroutine"));
    assert_eq!(got[&(NUMBERS + 3)].1.as_str(), Some("unknown op shuffle"));

    // jobs is closed: each worker's range ends and it returns its count.
    let mut per_worker = Vec::new();
    for (w, task) in (1..).zip(workers) {
        let done: i64 = match task.wait()?.front() {
            Some(v) => v.as_i64().expect("a count"),
            None => panic!("worker {w} returned nothing"),
        };
        let seen = got.values().filter(|(by, _)| *by == w).count() as i64;
        assert_eq!(done, seen, "worker {w}");
        per_worker.push(done);
    }
    assert_eq!(per_worker.iter().sum::<i64>(), total as i64);

    for (job, (worker, value)) in got.iter().filter(|(j, _)| **j % 10 == 0 || **j > NUMBERS) {
        println!("job {job:>2} by worker {worker}: {value}");
    }
    println!("{total} jobs; jobs done by workers 1..={WORKERS}: {per_worker:?}");

    // Nothing more comes: the host closes results and drains it.
    res_tx.close()?;
    assert_eq!(res_rx.recv()?, None);
    drop((jobs_tx, jobs_rx, res_tx, res_rx));
    rt.shutdown(Shutdown::Wait)?;
    println!("shut down: every goroutine has ended");
    Ok(())
}
