//! Stopping goroutines wherever their Lua code runs: inside C calls (a
//! `table.sort` comparator, a `gsub` callback, `__tostring`, a `load`
//! reader, an `xpcall` handler, `__index`), in finalizers, under `pcall`.
//! The CPU budget, the host's interrupt and the runtime's shutdown all
//! reach them (issue "Sound and bounded", item 3), and the stopped G's
//! `<close>` handlers run within a grace (issue "Faithful Lua").

use std::time::{Duration, Instant};

use lugo::mlua::MultiValue;
use lugo::{Error, Outcome, Runtime, Task};

#[path = "common/spinners.rs"]
mod spinners;
use spinners::SPINNERS;

/// A runtime of `procs` Ps whose actors have a CPU budget of `ms`.
fn budgeted(procs: usize, ms: u64) -> Runtime {
    Runtime::builder()
        .procs(procs)
        .cpu_budget(Duration::from_millis(ms))
        .build()
        .unwrap()
}

/// Lets `task` get into its loop (a wait that ends means it did not spin),
/// then interrupts it.
fn interrupt_spinning(task: &Task, name: &str) {
    assert!(
        task.wait_timeout(Duration::from_millis(30)).is_none(),
        "{name}"
    );
    task.interrupt();
}

fn run(rt: &Runtime, src: &str) -> Outcome {
    let main = rt
        .lua()
        .load(src)
        .set_name("=stop")
        .into_function()
        .unwrap();
    rt.run(main, MultiValue::new()).unwrap()
}

#[test]
fn the_cpu_budget_stops_lua_inside_every_kind_of_c_call() {
    let rt = budgeted(2, 150);
    // One actor per spinner, all at once; each must end with the budget's
    // error while the main actor (which only waits) goes on.
    let mut src = String::from("local hs = {}\n");
    for (name, body) in SPINNERS {
        src.push_str(&format!(
            "hs[#hs + 1] = {{ {name:?}, actor.spawn(load({body:?})) }}\n"
        ));
    }
    src.push_str(
        r#"
        for _, h in ipairs(hs) do
          local ok, err = h[2]:wait()
          assert(not ok and err:find("cpu budget of 150ms exceeded", 1, true),
            h[1] .. ": " .. tostring(err))
        end
        "#,
    );
    let started = Instant::now();
    assert_eq!(run(&rt, &src), Outcome::Exit(0));
    // Generous: two Ps share nine actors of 150 ms each.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn an_interrupt_stops_lua_inside_c_calls() {
    let rt = Runtime::builder().procs(1).build().unwrap();
    for (name, body) in SPINNERS {
        let f = rt.lua().load(body).into_function().unwrap();
        let task = rt.go(f, ()).unwrap();
        interrupt_spinning(&task, name);
        match task.wait() {
            Err(Error::Raised { message, .. }) => {
                assert_eq!(message, "interrupted", "{name}")
            }
            other => panic!("{name}: expected interrupted, got {other:?}"),
        }
    }
    // The runtime goes on.
    assert_eq!(rt.exec("return 1 + 1").unwrap().len(), 1);
}

#[test]
fn an_actor_whose_finalizer_spins_is_stopped_by_its_budget_when_it_ends() {
    let rt = budgeted(1, 150);
    // The actor returns; closing its state runs the finalizer, which the
    // budget stops, and the P is free for the next actor.
    let src = r#"
        local h = actor.spawn(function()
          setmetatable({}, { __gc = function() while true do end end })
        end)
        assert(h:wait())
        local h2 = actor.spawn(function() return 1 end)
        assert(h2:wait())
    "#;
    assert_eq!(run(&rt, src), Outcome::Exit(0));
}

#[test]
fn a_finalizer_that_spins_in_a_collection_is_stopped_by_the_budget() {
    let rt = budgeted(1, 150);
    // The collection runs outside any goroutine's code (between slices,
    // or in the actor's own call): its finalizers are watched all the same.
    let src = r#"
        local h = actor.spawn(function()
          for i = 1, 10 do setmetatable({}, { __gc = function() while true do end end }) end
          local t = {} for i = 1, 1e5 do t[i] = {} end
          t = nil
          runtime.gc()
        end)
        local ok, err = h:wait()
        assert(not ok and err:find("cpu budget", 1, true), err)
    "#;
    assert_eq!(run(&rt, src), Outcome::Exit(0));
}

#[test]
fn a_stop_runs_the_close_handlers_and_cuts_one_that_loops() {
    let rt = Runtime::builder().procs(1).build().unwrap();
    // The handlers run innermost first and see the stop's error; the
    // outermost loops, and the stop cuts it once the grace is spent.
    let f = rt
        .lua()
        .load(
            r#"
            closed = {}
            local function note(name)
              return setmetatable({}, { __close = function(_, e)
                closed[#closed + 1] = name .. ":" .. tostring(e)
              end })
            end
            local looping <close> = setmetatable({}, { __close = function() while true do end end })
            local mid <close> = note("mid")
            pcall(function()
              local inner <close> = note("inner")
              while true do end
            end)
            "#,
        )
        .into_function()
        .unwrap();
    let task = rt.go(f, ()).unwrap();
    interrupt_spinning(&task, "the loop");
    match task.wait() {
        Err(Error::Raised { message, .. }) => assert_eq!(message, "interrupted"),
        other => panic!("expected interrupted, got {other:?}"),
    }
    let closed: String = rt
        .lua()
        .load("return table.concat(closed, ' ')")
        .eval()
        .unwrap();
    assert_eq!(closed, "inner:interrupted mid:interrupted");
}

#[test]
fn a_close_handler_that_changes_its_hooks_is_still_cut() {
    let rt = Runtime::builder().procs(1).build().unwrap();
    // `debug.sethook` in a stopped G's handler replaces the stop's hook:
    // lugo's `debug.sethook` arms it again (at once: the grace is cut
    // short), so a loop that keeps taking it off is still cut.
    let f = rt
        .lua()
        .load(
            r#"
            local looping <close> = setmetatable({}, { __close = function()
              debug.sethook(function() end, "l")
              while true do debug.sethook() end
            end })
            while true do end
            "#,
        )
        .into_function()
        .unwrap();
    let task = rt.go(f, ()).unwrap();
    interrupt_spinning(&task, "the loop");
    match task.wait_timeout(Duration::from_secs(20)) {
        Some(Err(Error::Raised { message, .. })) => assert_eq!(message, "interrupted"),
        other => panic!("expected interrupted, got {other:?}"),
    }
}

#[test]
fn an_actor_stopped_by_its_budget_runs_its_close_handlers() {
    let rt = budgeted(1, 100);
    let src = r#"
        local seen = chan(1)
        local h = actor.spawn(function(seen)
          local _ <close> = setmetatable({}, { __close = function(_, e) seen:send(e) end })
          while true do end
        end, seen)
        local ok, err = h:wait()
        assert(not ok and err:find("cpu budget of 100ms exceeded", 1, true), err)
        local e = seen:recv()
        assert(e == "cpu budget exceeded", e)
    "#;
    assert_eq!(run(&rt, src), Outcome::Exit(0));
}
