//! Host calls run inline (`lugo_vm::sched::callin`): `Runtime::call` on a
//! host thread runs the goroutine on that thread while a P is free, and
//! keeps every guarantee a goroutine on an M has.
//!
//! A call is inline when a P's M is parked; each test first waits (bounded)
//! until every P is idle, so what it asserts does not hang on timing:
//! `runtime.stats().inline_calls` says whether the call ran inline.

use std::time::{Duration, Instant};

use lugo::mlua::{Function, MultiValue};
use lugo::{Error, Runtime};
use lugo_vm::sched::callin::INLINE_STACK_MIN;

fn runtime(procs: usize) -> Runtime {
    Runtime::builder()
        .procs(procs)
        .function("thread_name", |_, ()| {
            Ok(std::thread::current().name().unwrap_or("").to_string())
        })
        .function("host_call", |_, f: Function| f.call::<MultiValue>(()))
        .build()
        .expect("the runtime starts")
}

/// Waits until every P's M is parked (the runtime has just started, or
/// finished other work): the next call finds a P free.
fn settle(rt: &Runtime) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while rt.vm().idle_procs() < rt.vm().gomaxprocs() {
        assert!(Instant::now() < deadline, "the Ms never went idle");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn inline_calls(rt: &Runtime) -> i64 {
    rt.vm()
        .stats()
        .inline_calls
        .load(std::sync::atomic::Ordering::Relaxed) as i64
}

fn global(rt: &Runtime, name: &str) -> Function {
    rt.lua().globals().get(name).expect("the global is defined")
}

/// Runs `f` on a thread with room enough to run calls inline (a test's
/// thread has 2 MB, too little in a debug build); returns what it does.
fn on_big_stack<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("host".into())
            .stack_size(INLINE_STACK_MIN + (2 << 20))
            .spawn_scoped(s, f)
            .expect("the thread starts")
            .join()
            .expect("the thread does not panic")
    })
}

/// Runs `src` with `Runtime::exec` from a thread with room enough, once
/// every P is idle (so it starts inline); returns how many calls had run
/// inline before it, and what it returned.
fn exec_when_idle(rt: &Runtime, src: &str) -> (i64, lugo::Result<MultiValue>) {
    on_big_stack(|| {
        settle(rt);
        (inline_calls(rt), rt.exec(src))
    })
}

/// A call that took less than a slice (10 ms) was not preempted nor
/// handed to an M: it ran on the calling thread from start to end.
/// (A longer one may have been: the thread was descheduled.)
fn ran_here(name: &str, took: Duration) -> bool {
    name == "host" || took >= Duration::from_millis(10)
}

#[test]
fn a_call_runs_on_the_calling_thread_while_a_p_is_free() {
    let rt = runtime(2);
    rt.exec("function where(x) return thread_name(), x + 1 end")
        .unwrap();
    let f = global(&rt, "where");
    on_big_stack(|| {
        settle(&rt);
        let before = inline_calls(&rt);
        let t = Instant::now();
        let (name, y): (String, i64) = rt.call(&f, 41).unwrap();
        assert!(ran_here(&name, t.elapsed()), "ran on {name}");
        assert_eq!(y, 42);
        assert_eq!(inline_calls(&rt), before + 1);
    });
}

#[test]
fn a_spinning_inline_call_is_preempted_and_other_goroutines_run() {
    // One P, which the host borrows: the goroutine the call starts can run
    // only once sysmon preempts the call, after its slice.
    let rt = runtime(1);
    let (before, v) = exec_when_idle(
        &rt,
        r#"
            local flag = false
            go(function() flag = true end)
            while not flag do end
            return runtime.stats().preemptions
            "#,
    );
    let v = v.unwrap();
    let preemptions = v.into_iter().next().and_then(|x| x.as_i64());
    assert!(preemptions >= Some(1), "{preemptions:?}");
    assert_eq!(inline_calls(&rt), before + 1);
}

#[test]
fn a_call_that_parks_frees_the_p_for_another_actor() {
    // One P: the actor the call spawns can only run once the call's
    // goroutine has parked and the host has given the P back.
    let rt = runtime(1);
    let (before, v) = exec_when_idle(
        &rt,
        r#"
            local c = chan()
            actor.spawn(function(c) c:send(thread_name()) end, c)
            return c:recv(), thread_name()
            "#,
    );
    let v = v.unwrap();
    let names: Vec<String> = v.into_iter().map(|x| x.to_string().unwrap()).collect();
    assert_eq!(names[0], "lugo-m0", "the actor ran on the P's M");
    // The call's goroutine, woken by the other actor, ends on an M.
    assert_eq!(names[1], "lugo-m0");
    assert_eq!(inline_calls(&rt), before + 1);
}

#[test]
fn a_call_that_asks_a_goroutine_of_its_own_actor_runs_both_inline() {
    let rt = runtime(2);
    rt.exec(
        r#"
        requests = chan()
        go(function()
          for r in requests:range() do r.reply:send(r.x * 2) end
        end)
        function ask(x)
          local reply = chan()
          requests:send({ x = x, reply = reply })
          return reply:recv(), thread_name()
        end
        "#,
    )
    .unwrap();
    let ask = global(&rt, "ask");
    on_big_stack(|| {
        settle(&rt);
        let t = Instant::now();
        let (y, name): (i64, String) = rt.call(&ask, 21).unwrap();
        assert!(ran_here(&name, t.elapsed()), "ran on {name}");
        assert_eq!(y, 42);
    });
}

#[test]
fn a_call_that_parks_for_good_is_reported_as_a_deadlock() {
    let rt = runtime(2);
    let (_, r) = exec_when_idle(&rt, "local c = chan() c:recv()");
    let Err(Error::Deadlock(report)) = r else {
        panic!("expected a deadlock, got {r:?}")
    };
    assert!(report.contains("[chan receive]"), "{report}");
    assert_eq!(rt.exec("return 1").unwrap().len(), 1, "the runtime goes on");
}

/// Recursion through C as deep as Lua's C-call limit lets it go, in the
/// two ways that take the most C stack per level (a `gsub` callback, a
/// host function calling back into Lua): an error, never a crash.
const DEEP: [&str; 2] = [
    r#"local function f(s) return (string.gsub(s, ".", function(c) return f(c) end)) end
       return f("x")"#,
    r#"local function f() return host_call(f) end return f()"#,
];

#[test]
fn deep_c_recursion_in_an_inline_call_stops_at_lua_s_limit() {
    let rt = runtime(2);
    let chunks: Vec<Function> = DEEP
        .iter()
        .map(|src| rt.lua().load(*src).into_function().unwrap())
        .collect();
    // Just room enough to run inline, and too little: handed to an M.
    for (stack, inline) in [(INLINE_STACK_MIN + (128 << 10), true), (256 << 10, false)] {
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(stack)
                .spawn_scoped(s, || {
                    for f in &chunks {
                        settle(&rt);
                        let before = inline_calls(&rt);
                        let r = rt.call::<MultiValue>(f, ());
                        let Err(Error::Raised { message, .. }) = &r else {
                            panic!("expected an error, got {r:?}")
                        };
                        assert!(message.contains("stack overflow"), "{message}");
                        assert_eq!(inline_calls(&rt) > before, inline, "stack {stack}");
                    }
                })
                .unwrap();
        });
    }
}

#[test]
fn a_call_from_inside_a_lua_call_on_the_host_thread_is_refused() {
    // The host thread runs a function of the main state itself (through
    // mlua), which calls `Runtime::call`: its goroutine could run neither
    // on an M (the state is held) nor here. An error, not a hang.
    let rt = runtime(2);
    rt.exec("function inc(x) return x + 1 end").unwrap();
    let inc = global(&rt, "inc");
    let r: lugo::mlua::Result<String> = rt.lua().scope(|scope| {
        let f = scope.create_function(|_, ()| match rt.call::<i64>(&inc, 1) {
            Ok(_) => Ok("ran".to_string()),
            Err(e) => Ok(e.to_string()),
        })?;
        f.call(())
    });
    let message = r.unwrap();
    assert!(
        message.contains("from inside a Lua call of the main actor's state"),
        "{message}"
    );
    // Outside it, the same call runs.
    assert_eq!(rt.call::<i64>(&inc, 1).unwrap(), 2);
}

#[test]
fn a_blocking_call_made_inline_hands_the_p_off() {
    // One P, borrowed by the host: the blocking call waits for another
    // actor, which can run only on that P, handed to a spare M by sysmon.
    let flag = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
    let (set, wait) = (flag.clone(), flag);
    let rt = Runtime::builder()
        .procs(1)
        .function("set_flag", move |_, ()| {
            *set.0.lock().unwrap() = true;
            set.1.notify_all();
            Ok(())
        })
        .blocking_function("wait_for_flag", move |_, ()| {
            let (m, cv) = &*wait;
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut set = m.lock().unwrap();
            while !*set && Instant::now() < deadline {
                set = cv.wait_timeout(set, Duration::from_millis(100)).unwrap().0;
            }
            Ok(*set)
        })
        .build()
        .unwrap();
    let (before, v) = exec_when_idle(
        &rt,
        "actor.spawn(function() set_flag() end) return wait_for_flag()",
    );
    let v = v.unwrap();
    let set = v.into_iter().next().and_then(|x| x.as_boolean());
    assert_eq!(set, Some(true), "the other actor ran during the call");
    assert_eq!(inline_calls(&rt), before + 1);
}
