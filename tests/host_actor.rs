//! Actors the host starts and waits for ([`Runtime::spawn_actor`],
//! [`lugo::ActorHandle`]): started and waited for in Rust, with the
//! refusals of `actor.spawn` and the ends of a host task (the actor's,
//! a deadlock, the runtime's stop).
//!
//! A wait that could hang runs on a thread of its own and is bounded by a
//! deadline far above what it needs; no assertion depends on timing.

use std::sync::{mpsc, Arc};
use std::time::Duration;

use lugo::{Error, Outcome, Runtime, Value};

fn runtime(procs: usize) -> Runtime {
    Runtime::builder()
        .procs(procs)
        .build()
        .expect("the runtime starts")
}

/// How long a wait that must end may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// Runs `f` on a thread of its own and returns what it returns; fails
/// the test if that takes longer than [`LIMIT`] (the thread is left).
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(LIMIT)
        .expect("the wait ended (it hung, or its thread panicked)")
}

/// The message of a refusal, as Lua's `pcall(actor.spawn, ...)` gets it.
fn lua_refusal(rt: &Runtime, call: &str) -> String {
    let src = format!("local ok, err = {call} assert(not ok) return err");
    let values = rt.exec(src.as_str()).expect("the chunk runs");
    let err: String = rt
        .lua()
        .unpack_multi(values)
        .expect("actor.spawn's message is a string");
    assert!(err.starts_with("actor.spawn: "), "{err}");
    err
}

fn raised_message(r: lugo::Result<lugo::ActorHandle<'_>>) -> String {
    match r {
        Err(Error::Raised { message, .. }) => message,
        Err(e) => panic!("expected actor.spawn's refusal, got {e:?}"),
        Ok(_) => panic!("expected actor.spawn's refusal, the actor started"),
    }
}

#[test]
fn spawn_actor_refuses_what_actor_spawn_refuses_with_its_message() {
    let rt = runtime(1);
    // A chunk of bytecode whose function captures a local of its own
    // chunk: loaded, it still names the upvalue.
    rt.exec(
        r#"
        local x = 1
        captures = function() return x end
        code = string.dump(captures)
        "#,
    )
    .unwrap();
    let expected = lua_refusal(&rt, "pcall(actor.spawn, captures)");
    assert!(expected.contains("captures 'x'"), "{expected}");
    let code: lugo::mlua::LuaString = rt.lua().globals().get("code").unwrap();
    let code = code.as_bytes().to_vec();
    assert_eq!(raised_message(rt.spawn_actor(code, ())), expected);

    // An argument that cannot be copied: its path, as `actor.spawn` names it.
    let expected = lua_refusal(&rt, "pcall(actor.spawn, function() end, 1, {f = print})");
    assert!(expected.contains("arg2.f"), "{expected}");
    let print: lugo::mlua::Function = rt.lua().globals().get("print").unwrap();
    let table = rt.lua().create_table().unwrap();
    table.set("f", print).unwrap();
    assert_eq!(
        raised_message(rt.spawn_actor("return", (1, table))),
        expected
    );

    // The runtime goes on, and a good spawn works.
    let (tx, rx) = rt.channel(1);
    let ok = rt
        .spawn_actor("local out = ... out:send(actor.self():id())", &tx)
        .unwrap();
    ok.wait().unwrap();
    let id = ok.id().unwrap();
    assert!(id > 1);
    assert_eq!(rx.recv().unwrap(), Some(Value::from(id as i64)));
}

#[test]
fn a_failed_actor_gives_its_error_and_a_second_wait_gives_it_again() {
    let rt = runtime(2);
    let failing = rt.spawn_actor("error('actor failed', 0)", ()).unwrap();
    for _ in 0..2 {
        match failing.wait() {
            Err(Error::Raised { message, traceback }) => {
                // As `handle:wait()` gives it: the error, then the
                // goroutine that raised it.
                assert!(message.starts_with("actor failed\n"), "{message}");
                assert!(traceback.is_empty(), "{traceback}");
            }
            other => panic!("expected the actor's error, got {other:?}"),
        }
    }
}

#[test]
fn wait_returns_stopped_when_os_exit_ends_the_runtime_meanwhile() {
    let rt = Arc::new(runtime(2));
    // The host holds the other end of the actor's channel: the actor is
    // not deadlocked, it waits for the host.
    let (_keep, held) = rt.channel(0);
    let (exit_tx, exit_rx) = rt.channel(0);
    rt.lua().globals().set("exit_signal", &exit_rx).unwrap();
    let exiter = rt
        .lua()
        .load("exit_signal:recv() time.sleep(0.02) os.exit(3)")
        .into_function()
        .unwrap();
    let _exiter = rt.go(exiter, ()).unwrap();

    let (waiting_tx, waiting_rx) = mpsc::channel();
    let waiter = {
        let rt = rt.clone();
        move || {
            let a = rt
                .spawn_actor("local held = ... held:recv()", &held)
                .unwrap();
            waiting_tx.send(()).unwrap();
            a.wait()
        }
    };
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(waiter());
    });
    waiting_rx.recv_timeout(LIMIT).expect("the actor started");
    exit_tx.send(1).unwrap();
    let r = done_rx
        .recv_timeout(LIMIT)
        .expect("the wait ended when the runtime stopped");
    assert!(
        matches!(r, Err(Error::Stopped(Outcome::Exit(3)))),
        "expected Stopped(Exit(3)), got {r:?}"
    );
    assert_eq!(rt.outcome(), Some(Outcome::Exit(3)));
    // After the stop, a spawn and a wait answer at once.
    assert!(matches!(
        rt.spawn_actor("return", ()),
        Err(Error::Stopped(Outcome::Exit(3)))
    ));
}

#[test]
fn a_wait_for_a_stopped_runtime_returns_at_once() {
    let rt = Arc::new(runtime(1));
    let (_keep, held) = rt.channel(0);
    let r = within({
        let rt = rt.clone();
        move || {
            let a = rt
                .spawn_actor("local held = ... held:recv()", &held)
                .unwrap();
            rt.vm().finish(Outcome::Exit(5));
            a.wait()
        }
    });
    assert!(
        matches!(r, Err(Error::Stopped(Outcome::Exit(5)))),
        "expected Stopped(Exit(5)), got {r:?}"
    );
}

#[test]
fn a_wait_for_an_actor_blocked_for_good_reports_the_deadlock() {
    let rt = Arc::new(runtime(2));
    let r = within({
        let rt = rt.clone();
        move || rt.spawn_actor("chan():recv()", ()).unwrap().wait()
    });
    match r {
        Err(Error::Deadlock(report)) => {
            assert!(report.contains("[chan receive]"), "{report}")
        }
        other => panic!("expected the deadlock report, got {other:?}"),
    }
    // The runtime goes on.
    let v = rt.exec("return 1 + 1").unwrap();
    assert_eq!(v.into_iter().next().and_then(|v| v.as_i64()), Some(2));
}

/// The host is told the moment the actor's state is closed, on the M that
/// closed it, and may drop the runtime at once: that stops every M
/// (signalling its slot), while the M that closed the state may still
/// publish the state's freed main thread. It must not: a hook armed on
/// freed memory corrupted the heap (a crash in some runs of this test).
#[test]
fn dropping_the_runtime_right_after_a_wait_is_sound() {
    for _ in 0..100 {
        let rt = runtime(1);
        rt.spawn_actor("local x = 1", ()).unwrap().wait().unwrap();
        drop(rt);
    }
}
