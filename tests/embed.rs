//! The embedding API (crate `lugo`): a host builds a runtime, runs Lua in
//! it and gets the outcome back as a value.

use lugo::mlua::MultiValue;
use lugo::{Outcome, Runtime};

/// Runs `src` as the main goroutine of a fresh runtime built by `build`.
fn run_with(build: lugo::Builder, src: &str) -> Outcome {
    let rt = build.build().expect("the runtime starts");
    let main = rt
        .lua()
        .load(src)
        .set_name("=embed")
        .into_function()
        .expect("the test chunk compiles");
    rt.run(main, MultiValue::new())
        .expect("the main goroutine starts")
}

/// The report of a run that must have ended in a panic.
fn panic_report(outcome: Outcome) -> String {
    match outcome {
        Outcome::Panic(report) => report,
        other => panic!("expected a panic outcome, got {other:?}"),
    }
}

#[test]
fn goroutines_and_channels_run_for_the_host() {
    let outcome = run_with(
        Runtime::builder().procs(2),
        r#"
        local c = chan(0)
        local sum = 0
        for i = 1, 100 do go(function() c:send(i) end) end
        for _ = 1, 100 do sum = sum + c:recv() end
        assert(sum == 5050, sum)
        "#,
    );
    assert_eq!(outcome, Outcome::Exit(0));
}

#[test]
fn an_uncaught_error_is_an_outcome_not_a_panic_of_the_host() {
    let outcome = run_with(Runtime::builder().procs(1), "error('boom')");
    let report = panic_report(outcome);
    assert!(report.contains("boom"), "{report}");
    assert_eq!(
        run_with(Runtime::builder().procs(1), "error('boom')").code(),
        2
    );
}

#[test]
fn memory_limit_applies_to_every_actor_and_the_program_goes_on() {
    let outcome = run_with(
        Runtime::builder().procs(2).memory_limit(4 << 20),
        r#"
        local function hog()
          local t = {}
          for i = 1, 1e8 do t[i] = ("x"):rep(64) .. i end
        end
        -- the main actor: the error can be caught, the state stays usable
        local ok, err = pcall(hog)
        assert(not ok and tostring(err):find("not enough memory", 1, true), tostring(err))
        collectgarbage()
        -- a spawned actor inherits the limit; its failure ends only it
        local ok2, err2 = actor.spawn(hog):wait()
        assert(ok2 == false and err2:find("not enough memory", 1, true), err2)
        -- an actor's own limit can narrow its spawner's, not widen it: what
        -- it uses is charged to its spawner too
        local narrow = actor.spawn({ function() return #("x"):rep(2 << 20) end, memory = 1 << 20 })
        local ok3, err3 = narrow:wait()
        assert(ok3 == false and err3:find("not enough memory", 1, true), err3)
        local wide = actor.spawn({ function() return #("x"):rep(8 << 20) end, memory = 64 << 20 })
        local ok4, err4 = wide:wait()
        assert(ok4 == false and err4:find("not enough memory", 1, true), err4)
        local fits = actor.spawn({ function() return #("x"):rep(1 << 20) end, memory = 64 << 20 })
        assert(fits:wait())
        -- and the main actor allocates again after its failure
        local s = ("y"):rep(1 << 20)
        assert(#s == 1 << 20)
        "#,
    );
    assert_eq!(outcome, Outcome::Exit(0));
}

#[test]
fn without_a_memory_limit_a_large_heap_is_fine() {
    let outcome = run_with(
        Runtime::builder().procs(1),
        "local s = ('x'):rep(16 << 20) assert(#s == 16 << 20)",
    );
    assert_eq!(outcome, Outcome::Exit(0));
}

/// What a sandboxed script can and cannot do, checked in the main actor
/// and in an actor it spawns (every actor of a sandboxed runtime is one).
const SANDBOX_CHECKS: &str = r#"
    assert(io == nil and debug == nil and loadfile == nil and dofile == nil)
    assert(os.exit == nil and os.getenv == nil and os.execute == nil and os.remove == nil)
    assert(type(os.time()) == "number" and type(os.clock()) == "number")
    assert(net == nil and not pcall(require, "net"))
    assert(not pcall(require, "io") and not pcall(require, "debug"))
    assert(package.loadlib == nil and package.searchpath == nil)
    -- a Lua file that `require` finds from the working directory elsewhere
    local ok, err = pcall(require, "scripts.examples.hello")
    assert(not ok and err:find("module 'scripts.examples.hello' not found", 1, true), err)
    -- binary chunks are refused, text chunks load (with or without env)
    local f, lerr = load(string.dump(function() return 1 end), "bin", "b")
    assert(f == nil and lerr:find("binary chunk", 1, true), lerr)
    assert(load("return 1 + 1")() == 2)
    assert(load("return x", "env", "t", { x = 7 })() == 7)
    assert(not pcall(load("return x", "nil env", "t", nil)))  -- _ENV is nil
    -- goroutines and channels work as usual
    local c = chan(1)
    go(function() c:send("ok") end)
    assert(c:recv() == "ok")
"#;

#[test]
fn a_sandboxed_script_cannot_read_files_or_load_bytecode() {
    let src = format!(
        r#"
        {SANDBOX_CHECKS}
        local ok, err = pcall(actor.spawn, "scripts/examples/hello.lua")
        assert(not ok and err:find("actor.spawn: a sandboxed script cannot load a file", 1, true), err)
        local checks = ...
        local h = actor.spawn(function(src) assert(load(src))() end, checks)
        local ok2, err2 = h:wait()
        assert(ok2 == true, err2)
        "#
    );
    let rt = Runtime::builder().procs(2).sandbox(true).build().unwrap();
    let main = rt.lua().load(src).into_function().unwrap();
    let args = MultiValue::from_iter([lugo::mlua::Value::String(
        rt.lua().create_string(SANDBOX_CHECKS).unwrap(),
    )]);
    assert_eq!(rt.run(main, args).unwrap(), Outcome::Exit(0));
}

#[test]
fn an_unsandboxed_runtime_keeps_the_full_library() {
    let outcome = run_with(
        Runtime::builder().procs(1),
        r#"assert(io and debug and os.getenv and loadfile and net)
           assert(package.searchers[2])
           assert(load(string.dump(function() return 1 end))() == 1)"#,
    );
    assert_eq!(outcome, Outcome::Exit(0));
}

#[test]
fn a_cpu_budget_stops_a_looping_actor_and_the_others_go_on() {
    let outcome = run_with(
        Runtime::builder()
            .procs(2)
            .sandbox(true)
            .cpu_budget(std::time::Duration::from_millis(200)),
        r#"
        -- an untrusted actor that loops forever, even inside pcall
        local spinner = actor.spawn(function()
          while true do pcall(function() while true do end end) end
        end)
        -- a well-behaved actor next to it
        local worker = actor.spawn(function()
          local s = 0
          for i = 1, 1000 do s = s + i end
          assert(s == 500500)
        end)
        local ok, err = spinner:wait()
        assert(ok == false and err:find("cpu budget of 200ms exceeded", 1, true), err)
        local okw, errw = worker:wait()
        assert(okw == true, errw)
        -- the main actor itself is stopped too once it spins
        while true do end
        "#,
    );
    let report = panic_report(outcome);
    assert!(
        report.starts_with("panic: cpu budget of 200ms exceeded"),
        "{report}"
    );
}

#[test]
fn many_short_goroutine_switches_count_against_the_budget() {
    // No goroutine runs long enough to be preempted: the budget is
    // charged every 16 switches.
    let outcome = run_with(
        Runtime::builder()
            .procs(1)
            .cpu_budget(std::time::Duration::from_millis(100)),
        r#"
        for _ = 1, 4 do
          go(function() while true do runtime.gosched() end end)
        end
        while true do runtime.gosched() end
        "#,
    );
    let report = panic_report(outcome);
    assert!(report.contains("cpu budget"), "{report}");
}

#[test]
fn host_functions_reach_every_actor_and_check_their_arguments() {
    let outcome = run_with(
        Runtime::builder()
            .procs(2)
            .function("add", |_, (a, b): (i64, i64)| Ok(a + b))
            .function("fails", |_, ()| -> lugo::mlua::Result<()> {
                Err(lugo::mlua::Error::runtime("the host says no"))
            }),
        r#"
        assert(add(2, 3) == 5)
        -- failures are plain strings, `name: message`, with the position
        -- of a Lua caller (as luaL_error gives it)
        local ok, err = pcall(add, "x", 1)
        assert(not ok and type(err) == "string" and err:find("^add: ")
          and not err:find("traceback") and not err:find("runtime error"), tostring(err))
        local ok2, err2 = pcall(function() local r = fails() return r end)
        assert(not ok2 and err2:find("^embed:%d+: fails: the host says no$"), tostring(err2))
        local ok3, err3 = actor.spawn(function() assert(add(40, 2) == 42) end):wait()
        assert(ok3 == true, err3)
        -- uncaught in a goroutine: the report shows the message
        fails()
        "#,
    );
    let report = panic_report(outcome);
    assert!(
        report.starts_with("panic: embed:13: fails: the host says no\n"),
        "{report}"
    );
}

#[test]
fn a_blocking_host_function_fails_with_a_plain_message() {
    let outcome = run_with(
        Runtime::builder().procs(1).blocking_function(
            "slow",
            |_, n: i64| -> lugo::mlua::Result<i64> {
                match n {
                    0 => Err(lugo::mlua::Error::runtime("zero")),
                    n => Ok(n),
                }
            },
        ),
        r#"
        assert(slow(3) == 3)
        local ok, err = pcall(slow, 0)
        assert(not ok and err == "slow: zero", tostring(err))
        local ok2, err2 = pcall(function() local r = slow({}) return r end)
        assert(not ok2 and err2:find("^embed:%d+: slow: error converting"), tostring(err2))
        "#,
    );
    assert_eq!(outcome, Outcome::Exit(0));
}

#[test]
fn a_blocking_host_function_hands_its_p_off() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    // `host_wait` blocks its M until `host_release` is called. With one P,
    // the main actor can call `host_release` only if the P was handed off.
    let entered = Arc::new(AtomicBool::new(false));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let (e1, e2, g1, g2) = (entered.clone(), entered, gate.clone(), gate);
    let outcome = run_with(
        Runtime::builder()
            .procs(1)
            .blocking_function("host_wait", move |_, ()| {
                e1.store(true, Ordering::SeqCst);
                let (open, cv) = &*g1;
                let guard = open.lock().unwrap();
                let (guard, _) = cv
                    .wait_timeout_while(guard, Duration::from_secs(20), |open| !*open)
                    .unwrap();
                Ok(*guard)
            })
            .function("host_waiting", move |_, ()| Ok(e2.load(Ordering::SeqCst)))
            .function("host_release", move |_, ()| {
                *g2.0.lock().unwrap() = true;
                g2.1.notify_all();
                Ok(())
            }),
        r#"
        local waiter = actor.spawn(function() assert(host_wait() == true, "not released") end)
        while not host_waiting() do time.sleep(0.001) end
        host_release()
        local ok, err = waiter:wait()
        assert(ok == true, err)
        "#,
    );
    assert_eq!(outcome, Outcome::Exit(0));
}

#[test]
fn time_in_a_blocking_host_function_is_not_charged_to_the_cpu_budget() {
    let outcome = run_with(
        Runtime::builder()
            .procs(1)
            .cpu_budget(std::time::Duration::from_millis(100))
            .blocking_function("host_sleep", |_, ms: u64| {
                std::thread::sleep(std::time::Duration::from_millis(ms));
                Ok(())
            }),
        r#"
        for _ = 1, 3 do host_sleep(60) end   -- 180 ms waiting, little running
        local ok, err = actor.spawn(function()
          for _ = 1, 3 do host_sleep(60) end
        end):wait()
        assert(ok == true, err)
        "#,
    );
    assert_eq!(outcome, Outcome::Exit(0));
}

#[test]
fn actors_that_end_are_forgotten_and_failed_spawns_free_their_state() {
    let rt = Runtime::builder().procs(2).build().unwrap();
    let main = rt
        .lua()
        .load(
            r#"
            for i = 1, 2000 do
              assert(actor.spawn(function(n) return n end, i):wait())
              -- a spawn that fails (its state cannot hold lugo) leaves nothing
              assert(not pcall(actor.spawn, { function() end, memory = 1000 }))
            end
            "#,
        )
        .into_function()
        .unwrap();
    assert_eq!(rt.run(main, MultiValue::new()).unwrap(), Outcome::Exit(0));
    assert_eq!(rt.vm().tracked_actors(), 1, "only the main actor is left");
}
