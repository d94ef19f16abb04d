//! A host that keeps a runtime: runs chunks and functions as goroutines
//! and waits for them, talks to goroutines over channels, answers
//! deferred calls from its own threads, interrupts and shuts down.
//!
//! Every wait here is bounded by what it waits for; a broken runtime fails
//! these tests by returning the wrong result (or, at worst, by the test
//! harness's own timeout), never by a timing race in the assertion.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use lugo::mlua::{Function, MultiValue};
use lugo::{Error, Outcome, Runtime, Shutdown, Value};

fn runtime(procs: usize) -> Runtime {
    Runtime::builder()
        .procs(procs)
        .build()
        .expect("the runtime starts")
}

/// Starts `src` as a goroutine the test waits for.
fn start(rt: &Runtime, src: &str) -> lugo::Task {
    let f = rt
        .lua()
        .load(src)
        .into_function()
        .expect("the chunk compiles");
    rt.go(f, ()).expect("the goroutine starts")
}

fn global(rt: &Runtime, name: &str) -> Function {
    rt.lua().globals().get(name).expect("the global is defined")
}

/// The first of a task's results, as an integer.
fn first_int(v: MultiValue) -> Option<i64> {
    v.into_iter().next().and_then(|x| x.as_i64())
}

fn deadlock_report(r: lugo::Result<MultiValue>) -> String {
    match r {
        Err(Error::Deadlock(report)) => report,
        other => panic!("expected a deadlock, got {other:?}"),
    }
}

#[test]
fn exec_returns_values_and_the_state_lives_on() {
    let rt = runtime(2);
    let v = rt.exec("counter = 41 return 'a', 2").unwrap();
    let (s, n): (String, i64) = lugo::mlua::FromLuaMulti::from_lua_multi(v, rt.lua()).unwrap();
    assert_eq!((s.as_str(), n), ("a", 2));
    // A second chunk sees the first one's globals; it may park.
    let v = rt
        .exec("time.sleep(0.001) counter = counter + 1 return counter")
        .unwrap();
    assert_eq!(first_int(v), Some(42));
    // A syntax error is a Lua error, before anything runs.
    assert!(matches!(rt.exec("return +"), Err(Error::Lua(_))));
}

#[test]
fn call_runs_a_function_that_parks_while_other_goroutines_run() {
    let rt = runtime(2);
    rt.exec(
        r#"
        function pmap(f, xs)
          local out, done = {}, chan()
          for i, x in ipairs(xs) do go(function() out[i] = f(x) done:send(true) end) end
          for _ = 1, #xs do done:recv() end
          return out
        end
        function square(x) time.sleep(0.001) return x * x end
        "#,
    )
    .unwrap();
    let pmap = global(&rt, "pmap");
    let square = global(&rt, "square");
    let out: Vec<i64> = rt.call(&pmap, (square, vec![1, 2, 3, 4])).unwrap();
    assert_eq!(out, [1, 4, 9, 16]);
    // Bad arguments are an error of the call, not a panic of the host.
    let bad: lugo::Result<Vec<i64>> = rt.call(&pmap, (square_again(&rt), ()));
    let Err(Error::Raised { message, .. }) = bad else {
        panic!("expected a raised error, got {bad:?}")
    };
    assert!(
        message.contains("attempt to index a nil value"),
        "{message}"
    );
    // The result does not convert: a Lua error of the conversion.
    let wrong: lugo::Result<String> = rt.call(&pmap, (square_again(&rt), vec![1]));
    assert!(matches!(wrong, Err(Error::Lua(_))), "{wrong:?}");
}

fn square_again(rt: &Runtime) -> Function {
    global(rt, "square")
}

#[test]
fn an_error_comes_back_with_its_traceback_and_the_runtime_goes_on() {
    let rt = runtime(1);
    rt.exec("function inner() error('boom') end function outer() inner() end")
        .unwrap();
    let err = rt.call::<()>(&global(&rt, "outer"), ()).unwrap_err();
    let Error::Raised { message, traceback } = &err else {
        panic!("expected a raised error, got {err:?}")
    };
    assert!(message.ends_with(": boom"), "{message}");
    assert!(traceback.starts_with("stack traceback:\n"), "{traceback}");
    assert!(
        traceback.contains("in function 'inner'") && traceback.contains("in function 'outer'"),
        "{traceback}"
    );
    assert!(
        !traceback.contains("[lugo]"),
        "lugo's frames are hidden: {traceback}"
    );
    assert_eq!(rt.exec("return 1").unwrap().len(), 1, "still running");
}

#[test]
fn a_deadlocked_task_gets_the_report_and_the_runtime_goes_on() {
    let rt = runtime(2);
    let report = deadlock_report(rt.exec("local c = chan() c:recv()"));
    assert!(
        report.starts_with("fatal error: all goroutines are asleep - deadlock!"),
        "{report}"
    );
    assert!(report.contains("[chan receive]"), "{report}");
    // The stuck goroutine stays parked; new work runs.
    let v = rt.exec("return 7").unwrap();
    assert_eq!(first_int(v), Some(7));
    assert!(rt.vm().numgoroutine() >= 1, "the parked goroutine is left");
}

#[test]
fn the_host_gets_the_state_while_a_goroutine_spins() {
    // One P: a goroutine that never parks keeps the main actor running;
    // the state's lock is let go at the end of every 10 ms slice.
    let rt = runtime(1);
    rt.exec("go(function() while true do end end)").unwrap();
    // One that never runs long but never stops switching either.
    rt.exec("go(function() while true do runtime.gosched() end end)")
        .unwrap();
    for i in 0..5 {
        rt.lua().globals().set("n", i).unwrap();
        let v = rt.exec("return n * 2").unwrap();
        assert_eq!(first_int(v), Some(i * 2));
    }
    // Lua values the host holds take the lock too when used or dropped,
    // long after the host last asked for the state.
    let double: Function = rt
        .lua()
        .load("return function(x) return 2 * x end")
        .eval()
        .unwrap();
    let table: lugo::mlua::Table = rt.lua().create_table().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(double.call::<i64>(21).unwrap(), 42);
    drop(table);
}

#[test]
fn goroutines_started_by_a_chunk_outlive_it() {
    let rt = runtime(2);
    let (tx, rx) = rt.channel(0);
    rt.lua().globals().set("out", &tx).unwrap();
    drop(tx);
    // The chunk returns at once; its goroutine sends later.
    rt.exec("go(function() time.sleep(0.01) out:send('late') end)")
        .unwrap();
    assert_eq!(rx.recv().unwrap(), Some(Value::from("late")));
}

#[test]
fn host_channel_ends_copy_values_both_ways() {
    let rt = runtime(2);
    let (to_lua, inbox) = rt.channel(4);
    let (outbox, from_lua) = rt.channel(4);
    rt.lua().globals().set("inbox", &inbox).unwrap();
    rt.lua().globals().set("outbox", &outbox).unwrap();
    let worker = start(
        &rt,
        r#"
                    for job in inbox:range() do
                      outbox:send({ id = job.id, sum = job.a + job.b, tag = job.tag .. "!" })
                    end
                    outbox:close()
                    "#,
    );
    // More jobs than both buffers hold: the host sends from a thread.
    let sender = to_lua.clone();
    let feeder = std::thread::spawn(move || {
        for id in 1..=10 {
            let job = Value::map([
                ("id", Value::from(id)),
                ("a", Value::from(id * 10)),
                ("b", Value::from(0.5)),
                ("tag", Value::from(format!("job{id}"))),
            ]);
            sender.send(job).unwrap();
        }
        sender.close().unwrap();
    });
    let mut got = Vec::new();
    while let Some(r) = from_lua.recv().unwrap() {
        let id = r.get("id").and_then(Value::as_integer).unwrap();
        assert_eq!(
            r.get("sum").and_then(Value::as_number),
            Some(id as f64 * 10.0 + 0.5)
        );
        assert_eq!(
            r.get("tag").and_then(Value::as_str),
            Some(format!("job{id}!").as_str())
        );
        got.push(id);
    }
    assert_eq!(got, (1..=10).collect::<Vec<_>>(), "in order: one worker");
    feeder.join().unwrap();
    worker.wait().unwrap();
    // A closed channel: sends fail, receives report the end.
    assert!(matches!(to_lua.send(1), Err(Error::Closed)));
    assert_eq!(from_lua.recv().unwrap(), None);
}

#[test]
fn host_channel_timeouts_and_values_that_cannot_cross() {
    let rt = runtime(1);
    let (tx, rx) = rt.channel(1);
    assert!(matches!(rx.try_recv(), Err(Error::Timeout)));
    assert!(matches!(
        rx.recv_timeout(Duration::from_millis(5)),
        Err(Error::Timeout)
    ));
    tx.try_send(1).unwrap();
    assert!(matches!(tx.try_send(2), Err(Error::Timeout)), "full");
    assert!(matches!(
        tx.send_timeout(2, Duration::from_millis(5)),
        Err(Error::Timeout)
    ));
    assert_eq!(rx.recv().unwrap(), Some(Value::from(1)));
    // A timed-out receive left no waiter behind: this value is not lost.
    tx.send(3).unwrap();
    assert_eq!(rx.try_recv().unwrap(), Some(Value::from(3)));

    rt.lua().globals().set("c", &tx).unwrap();
    // A goroutine cannot send a function to the host; a cycle cannot reach it.
    let err = rt.exec("c:send({ f = print })").unwrap_err().to_string();
    assert!(err.contains("cannot send a function at msg.f"), "{err}");
    rt.exec("local t = {} t.me = t c:send(t)").unwrap();
    let err = rx.recv().unwrap_err().to_string();
    assert!(
        err.contains("a table that contains itself at value.me"),
        "{err}"
    );
}

#[test]
fn a_host_holding_a_channel_end_keeps_its_peer_from_deadlock() {
    let rt = runtime(2);
    let (tx, rx) = rt.channel(0);
    let (ready_tx, ready_rx) = rt.channel(1);
    rt.lua().globals().set("work", &rx).unwrap();
    rt.lua().globals().set("ready", &ready_tx).unwrap();
    drop((rx, ready_tx));
    let task = start(&rt, "ready:send(true) return work:recv() * 2");
    // The goroutine is about to park on `work`; every M goes idle. Only the
    // host's `tx` can wake it, so it must not be reported as deadlocked.
    assert_eq!(ready_rx.recv().unwrap(), Some(Value::from(true)));
    assert!(
        task.wait_timeout(Duration::from_millis(100)).is_none(),
        "still waiting for the host"
    );
    std::thread::spawn(move || tx.send(21).unwrap())
        .join()
        .unwrap();
    let v = task.wait().unwrap();
    assert_eq!(first_int(v), Some(42));
}

#[test]
fn letting_go_of_the_last_end_reveals_the_deadlock() {
    let rt = runtime(2);
    let (tx, rx) = rt.channel(0);
    rt.lua().globals().set("work", &rx).unwrap();
    let task = start(&rt, "return work:recv()");
    assert!(task.wait_timeout(Duration::from_millis(50)).is_none());
    drop((tx, rx));
    assert!(deadlock_report(task.wait()).contains("[chan receive]"));
}

#[test]
fn deferred_functions_park_goroutines_until_a_host_thread_answers() {
    let pending: Arc<Mutex<Vec<(i64, lugo::Reply)>>> = Arc::default();
    let p = pending.clone();
    let rt = Runtime::builder()
        .procs(2)
        .deferred_function("lookup", move |_, key: i64, reply| {
            p.lock().unwrap().push((key, reply));
            Ok(())
        })
        .build()
        .unwrap();
    let (tx, rx) = rt.channel(16);
    rt.lua().globals().set("results", &tx).unwrap();
    rt.exec(
        r#"
        for k = 1, 5 do
          go(function()
            local ok, a, b = pcall(lookup, k)
            results:send(ok and (a .. "/" .. b) or a)
          end)
        end
        "#,
    )
    .unwrap();
    // Every goroutine parks in `lookup`; answer from another thread.
    let mut answered = 0;
    while answered < 5 {
        let calls: Vec<_> = std::mem::take(&mut *pending.lock().unwrap());
        if calls.is_empty() {
            std::thread::yield_now();
            continue;
        }
        answered += calls.len();
        std::thread::spawn(move || {
            for (key, reply) in calls {
                match key {
                    3 => reply.err("lookup: no such key"),
                    4 => drop(reply),
                    _ => reply.ok([Value::from(key * 10), Value::from("x")]),
                }
            }
        });
    }
    let mut got: Vec<String> = (0..5)
        .map(|_| {
            rx.recv()
                .unwrap()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap()
        })
        .collect();
    got.sort();
    assert_eq!(got[..3], ["10/x", "20/x", "50/x"]);
    assert!(got[3].ends_with("lookup: no such key"), "{}", got[3]);
    assert!(
        got[4].contains("lookup: the host dropped the call without an answer"),
        "{}",
        got[4]
    );
}

#[test]
fn an_unanswered_deferred_call_is_not_a_deadlock() {
    let held: Arc<Mutex<Option<lugo::Reply>>> = Arc::default();
    let h = held.clone();
    let rt = Runtime::builder()
        .procs(1)
        .deferred_function("later", move |_, (), reply| {
            *h.lock().unwrap() = Some(reply);
            Ok(())
        })
        .build()
        .unwrap();
    let task = start(&rt, "return later()");
    assert!(task.wait_timeout(Duration::from_millis(100)).is_none());
    let reply = held
        .lock()
        .unwrap()
        .take()
        .expect("the call reached the host");
    reply.ok(["done"]);
    let v = task.wait().unwrap();
    assert_eq!(v.into_iter().next().unwrap().to_string().unwrap(), "done");
}

#[test]
fn interrupt_stops_a_spinning_goroutine_and_a_parked_one_at_once() {
    let rt = runtime(1);
    let spin = start(&rt, "while true do end");
    spin.interrupt();
    match spin.wait() {
        Err(Error::Raised { message, .. }) => assert_eq!(message, "interrupted"),
        other => panic!("expected interrupted, got {other:?}"),
    }
    // Parked (or about to park): it stops at once, nothing woken it, and
    // its receive is withdrawn: a send finds no receiver.
    let (tx, rx) = rt.channel(0);
    let (ready_tx, ready_rx) = rt.channel(1);
    rt.lua().globals().set("c", &rx).unwrap();
    rt.lua().globals().set("ready", &ready_tx).unwrap();
    let parked = start(&rt, "ready:send(true) c:recv() reached = true");
    ready_rx.recv().unwrap();
    parked.interrupt();
    assert!(
        matches!(parked.wait(), Err(Error::Raised { message, .. }) if message == "interrupted")
    );
    assert!(
        tx.send_timeout(1, Duration::from_millis(20)).is_err(),
        "the interrupted receiver took nothing"
    );
    assert_eq!(rt.exec("return reached").unwrap().len(), 1);
    let reached: Option<bool> = rt.lua().globals().get("reached").unwrap();
    assert_eq!(reached, None, "the rest of the chunk did not run");
}

#[test]
fn shutdown_wait_lets_goroutines_finish() {
    let rt = runtime(2);
    let (tx, rx) = rt.channel(8);
    rt.lua().globals().set("out", &tx).unwrap();
    drop(tx);
    rt.exec("for i = 1, 3 do go(function() time.sleep(0.005 * i) out:send(i) end) end")
        .unwrap();
    rt.shutdown(Shutdown::Wait).unwrap();
    let mut got: Vec<i64> = (0..3)
        .map(|_| rx.try_recv().unwrap().unwrap().as_integer().unwrap())
        .collect();
    // Every goroutine finished; the order is not promised (on a loaded
    // machine the three sleeps can end together, and woken goroutines run
    // in no set order, as in Go).
    got.sort();
    assert_eq!(got, [1, 2, 3]);
}

#[test]
fn shutdown_wait_reports_goroutines_blocked_for_good() {
    let rt = runtime(2);
    rt.exec("go(function() chan():recv() end)").unwrap();
    match rt.shutdown(Shutdown::Wait) {
        Err(Error::Deadlock(report)) => assert!(report.contains("[chan receive]"), "{report}"),
        other => panic!("expected a deadlock, got {other:?}"),
    }
}

#[test]
fn shutdown_cancel_and_wait_for_stop_a_spinning_goroutine() {
    let rt = runtime(2);
    rt.exec("go(function() while true do end end)").unwrap();
    rt.shutdown(Shutdown::Cancel).unwrap();
    let rt = runtime(2);
    rt.exec("go(function() while true do end end)").unwrap();
    rt.shutdown(Shutdown::WaitFor(Duration::from_millis(20)))
        .unwrap();
}

#[test]
fn os_exit_and_background_panics_end_the_runtime() {
    let rt = runtime(1);
    assert!(matches!(
        rt.exec("os.exit(3)"),
        Err(Error::Stopped(Outcome::Exit(3)))
    ));
    assert_eq!(rt.outcome(), Some(Outcome::Exit(3)));
    assert!(matches!(rt.exec("return 1"), Err(Error::Stopped(_))));

    // Go's rule: an uncaught error in a goroutine nobody waits for.
    let rt = runtime(1);
    let r = rt.exec("go(function() error('bg') end) time.sleep(1)");
    match r {
        Err(Error::Stopped(Outcome::Panic(report))) => {
            assert!(report.starts_with("panic: "), "{report}");
            assert!(report.contains("bg"), "{report}");
        }
        other => panic!("expected the runtime to stop, got {other:?}"),
    }
}

#[test]
fn a_panic_handler_takes_background_panics_and_the_runtime_goes_on() {
    let reports: Arc<Mutex<Vec<String>>> = Arc::default();
    let r = reports.clone();
    let rt = Runtime::builder()
        .procs(1)
        .on_panic(move |report| r.lock().unwrap().push(report.to_string()))
        .build()
        .unwrap();
    let (tx, rx) = rt.channel(1);
    rt.lua().globals().set("done", &tx).unwrap();
    rt.exec("go(function() error('bg') end) go(function() done:send(1) end)")
        .unwrap();
    assert_eq!(rx.recv().unwrap(), Some(Value::from(1)));
    assert_eq!(rt.exec("return 2").unwrap().len(), 1);
    let reports = reports.lock().unwrap();
    assert_eq!(reports.len(), 1, "{reports:?}");
    assert!(reports[0].starts_with("panic: "), "{}", reports[0]);
    assert!(reports[0].contains("bg\n\ngoroutine "), "{}", reports[0]);
}

#[test]
fn run_file_and_spawn_actor() {
    let dir = std::env::temp_dir().join(format!("lugo-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lib.lua");
    std::fs::write(
        &path,
        "#!/usr/bin/env lugo\nlibrary_loaded = true\nreturn ...",
    )
    .unwrap();
    let rt = runtime(2);
    rt.run_file(&path).unwrap();
    let loaded: bool = rt.lua().globals().get("library_loaded").unwrap();
    assert!(loaded);
    let missing = rt.run_file(dir.join("missing.lua")).unwrap_err();
    assert!(missing.to_string().contains("cannot open"), "{missing}");

    let (tx, rx) = rt.channel(1);
    let ok = rt
        .spawn_actor("local out, n = ... out:send(n * 2)", (&tx, 21))
        .unwrap();
    ok.wait().unwrap();
    assert!(ok.id().unwrap() > 1);
    assert_eq!(rx.recv().unwrap(), Some(Value::from(42)));
    let failing = rt.spawn_actor("error('actor failed')", ()).unwrap();
    match failing.wait() {
        Err(Error::Raised { message, .. }) => {
            assert!(message.contains("actor failed"), "{message}")
        }
        other => panic!("expected the actor's error, got {other:?}"),
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cpu_budget_stops_an_exec_and_the_host_goes_on() {
    let rt = Runtime::builder()
        .procs(1)
        .sandbox(true)
        .cpu_budget(Duration::from_millis(100))
        .build()
        .unwrap();
    match rt.exec("while true do end") {
        Err(Error::Stopped(Outcome::Panic(report))) => {
            assert!(report.contains("cpu budget of 100ms exceeded"), "{report}")
        }
        other => panic!("expected the budget to stop it, got {other:?}"),
    }
    // The host builds another runtime and goes on.
    assert_eq!(runtime(1).exec("return 1").unwrap().len(), 1);
}

#[test]
fn host_threads_with_timeouts_lose_and_duplicate_nothing() {
    // Host senders give up now and then (a timeout withdraws their waiter);
    // goroutines receive through `select` beside another channel and hand
    // every value to host receivers that also time out. Each value that a
    // send reported as sent arrives exactly once.
    let rt = runtime(2);
    let (in_tx, in_rx) = rt.channel(0);
    let (out_tx, out_rx) = rt.channel(0);
    let (quiet_tx, quiet_rx) = rt.channel(0);
    rt.lua().globals().set("input", &in_rx).unwrap();
    rt.lua().globals().set("output", &out_tx).unwrap();
    rt.lua().globals().set("quiet", &quiet_rx).unwrap();
    drop((in_rx, out_tx));
    let relays: Vec<_> = (0..4)
        .map(|_| {
            start(
                &rt,
                r#"
                    while true do
                      local case, v, ok = chan.select({ "recv", input }, { "recv", quiet })
                      if case == 1 and not ok then return end
                      if case == 1 then output:send(v) end
                    end
                    "#,
            )
        })
        .collect();
    let per_sender = 500i64;
    let senders: Vec<_> = (0..3i64)
        .map(|s| {
            let tx = in_tx.clone();
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                for i in 0..per_sender {
                    let v = s * 1_000_000 + i;
                    let r = if i % 3 == 0 {
                        tx.send_timeout(v, Duration::from_micros(1))
                    } else {
                        tx.send(v)
                    };
                    match r {
                        Ok(()) => sent.push(v),
                        Err(Error::Timeout) => {}
                        Err(e) => panic!("send failed: {e}"),
                    }
                }
                sent
            })
        })
        .collect();
    let collector = std::thread::spawn(move || {
        let mut got = Vec::new();
        loop {
            match out_rx.recv_timeout(Duration::from_micros(200)) {
                Ok(Some(v)) => got.push(v.as_integer().unwrap()),
                Ok(None) => break,
                Err(Error::Timeout) => {}
                Err(e) => panic!("recv failed: {e}"),
            }
        }
        got
    });
    let mut sent: Vec<i64> = senders
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    in_tx.close().unwrap();
    for r in relays {
        r.wait().unwrap();
    }
    // Every relay is done: close the output through Lua's end.
    rt.exec("output:close()").unwrap();
    let mut got = collector.join().unwrap();
    sent.sort_unstable();
    got.sort_unstable();
    assert!(sent.len() as i64 >= 2 * per_sender, "most sends go through");
    assert_eq!(got, sent);
    drop(quiet_tx);
}

#[test]
fn host_threads_calling_at_once_each_get_their_own_results() {
    // 8 host threads, 2 Ps: each call is a goroutine of the main actor,
    // and each thread gets back what it asked for (no crossed answers, no
    // deadlock report while every thread waits).
    let rt = Arc::new(runtime(2));
    rt.exec("function twice(x) return x * 2 end").unwrap();
    let threads: Vec<_> = (0..8i64)
        .map(|t| {
            let rt = rt.clone();
            std::thread::spawn(move || {
                let twice = global(&rt, "twice");
                for i in 0..200i64 {
                    let x = t * 1000 + i;
                    let got: i64 = rt.call(&twice, x).unwrap();
                    assert_eq!(got, 2 * x);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn waiting_from_inside_a_host_function_for_its_own_actor_is_refused() {
    // A host function that calls back into the runtime and waits: its
    // goroutine's M holds the main actor, so the call could never run.
    // The wait is refused with an error saying so, instead of a hang.
    let cell: Arc<std::sync::OnceLock<Runtime>> = Arc::new(std::sync::OnceLock::new());
    let inner = cell.clone();
    let rt = Runtime::builder()
        .procs(2)
        .function("reenter", move |_, ()| {
            let rt = inner.get().expect("set before any script runs");
            match rt.exec("return 1") {
                Ok(_) => Ok("ran".to_string()),
                Err(e) => Ok(e.to_string()),
            }
        })
        .build()
        .unwrap();
    assert!(cell.set(rt).is_ok());
    let rt = cell.get().unwrap();
    let v = rt.exec("return reenter()").unwrap();
    let msg = v
        .into_iter()
        .next()
        .and_then(|v| v.as_string().map(|s| s.to_string_lossy()));
    let msg = msg.expect("a string");
    assert!(
        msg.contains("waits for a goroutine of its own actor"),
        "{msg}"
    );
    // The runtime goes on.
    assert_eq!(first_int(rt.exec("return 41 + 1").unwrap()), Some(42));
}

#[test]
fn the_host_finds_and_reclaims_leaks_and_its_channel_end_keeps_a_waiter() {
    let rt = runtime(2);
    let (tx, rx) = rt.channel(0);
    rt.lua().globals().set("from_host", rx).unwrap();
    // Goroutine `held` waits on the channel whose other end the host
    // holds (its box is only on that goroutine's stack); `lost` waits on
    // a channel nothing else holds. Both parked before the chunk returns.
    let v = rt
        .exec(
            r#"
local r = from_host
from_host = nil
local held = go(function() return r:recv() end)
local lost = go(function() chan():send(1) end)
local function parked(id)
  for _, g in ipairs(runtime.goroutines()) do
    if g.id == id then return g.state ~= "runnable" and g.state ~= "running" end
  end
end
while not (parked(held) and parked(lost)) do runtime.gosched() end
return held, lost
"#,
        )
        .unwrap();
    let ids: Vec<i64> = v.into_iter().filter_map(|x| x.as_i64()).collect();
    let (_held, lost) = (ids[0] as u64, ids[1] as u64);
    let leaks = rt.leaks();
    assert_eq!(
        leaks.iter().map(|l| l.gid).collect::<Vec<_>>(),
        vec![lost],
        "{leaks:?}"
    );
    assert_eq!(rt.reclaim(&leaks), 1);
    // Reclaimed: it ends (an interrupt's way), and no check finds it again.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rt.vm().numgoroutine() > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(rt.vm().numgoroutine(), 1, "only `held` is left");
    assert!(rt.leaks().is_empty());
    // And `held` was alive all along: the host's send reaches it.
    tx.send(5).unwrap();
}
