//! `lugo_stdlib::open` called twice on one state: the C closures made by
//! the first call point at the state's boxed reference to its actor, which
//! the second call must not free (it reuses it); a state that belongs to
//! another actor is refused with an error.

use std::time::{Duration, Instant};

use lugo_vm::host::TaskEnd;
use lugo_vm::{Config, Runtime};
use mlua::{MultiValue, Value};

#[test]
fn opening_a_state_twice_keeps_the_first_closures_working() {
    let vm = Runtime::new(Config {
        procs: 1,
        face: &lugo_stdlib::FACE,
        ..Config::default()
    });
    let actor = vm.new_actor(None, 0).unwrap();
    actor.set_main_g(lugo_vm::actor::NO_MAIN_G);
    let lua = actor.lua();
    lugo_stdlib::open(lua, &actor).unwrap();
    // The first call's functions and objects, kept past the second call.
    lua.load(
        "FIRST = { chan = chan, waitgroup = sync.waitgroup, sleep = time.sleep, \
         go = go, ch = chan(1) }",
    )
    .exec()
    .unwrap();
    lugo_stdlib::open(lua, &actor).expect("the same actor's state opens again");

    let body = lua
        .load(
            r#"
            -- Reuse freed memory, if anything was freed.
            local junk = {}
            for i = 1, 2000 do junk[i] = { tostring(i) .. "x" } end
            local c = FIRST.chan(1)
            c:send(41)
            FIRST.ch:send(1)
            local wg = FIRST.waitgroup()
            wg:add(1)
            FIRST.go(function()
              FIRST.sleep(0.001)
              c:send(c:recv() + 1)
              wg:done()
            end)
            wg:wait()
            -- And the second call's.
            local c2 = chan(1)
            go(function() time.sleep(0.001) c2:send(FIRST.ch:recv()) end)
            return c:recv() + c2:recv()
            "#,
        )
        .set_name("=open_twice")
        .into_function()
        .unwrap();
    let task = lugo_stdlib::host::start_task(lua, &actor, body, MultiValue::new()).unwrap();
    match task.wait(Some(Instant::now() + Duration::from_secs(20))) {
        Some(TaskEnd::Returned(v)) => {
            assert!(matches!(v.front(), Some(Value::Integer(43))), "{v:?}")
        }
        other => panic!("the task did not return: {other:?}"),
    }

    // A state that belongs to another actor is refused, and the first
    // actor's state goes on working.
    let other = vm.new_actor(None, 0).unwrap();
    let err = lugo_stdlib::open(lua, &other).expect_err("another actor's state");
    assert!(err.to_string().contains("another actor"), "{err}");
    let again = lua.load("return FIRST.ch:send(7)").into_function().unwrap();
    let task = lugo_stdlib::host::start_task(lua, &actor, again, MultiValue::new()).unwrap();
    assert!(
        matches!(
            task.wait(Some(Instant::now() + Duration::from_secs(20))),
            Some(TaskEnd::Returned(_))
        ),
        "the first closures still work"
    );
    assert!(vm.close(Duration::from_secs(5)));
}

#[test]
fn opening_a_state_of_a_runtime_without_lugos_face_is_an_error() {
    // The face is handed to the runtime when it is built; no process
    // global stands in for it.
    let vm = Runtime::new(Config {
        procs: 1,
        ..Config::default()
    });
    let actor = vm.new_actor(None, 0).unwrap();
    actor.set_main_g(lugo_vm::actor::NO_MAIN_G);
    let err = lugo_stdlib::open(actor.lua(), &actor).unwrap_err();
    assert!(
        err.to_string().contains("lugo_stdlib::FACE"),
        "the error says what is missing: {err}"
    );
    assert!(vm.close(Duration::from_secs(5)));
}
