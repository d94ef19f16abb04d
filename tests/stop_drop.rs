//! Dropping a runtime stops its goroutines wherever their Lua code runs
//! (inside C calls, in finalizers), so no M is left spinning (issue "Sound
//! and bounded", item 3). One test in its own process, so no other test's
//! threads count.

use std::time::{Duration, Instant};

use lugo::Runtime;

#[path = "common/spinners.rs"]
mod spinners;
use spinners::SPINNERS;

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn dropping_a_runtime_stops_lua_inside_c_calls_and_finalizers() {
    let before = threads();
    for (i, (name, body)) in SPINNERS.into_iter().enumerate() {
        let rt = Runtime::builder().procs(2).build().unwrap();
        // A finalizer left to run when the state closes spins too (in a
        // few: each is given the whole close deadline, a second).
        if i % 3 == 0 {
            rt.exec("setmetatable({}, { __gc = function() while true do end end })")
                .unwrap();
        }
        let f = rt.lua().load(body).into_function().unwrap();
        let task = rt.go(f, ()).unwrap();
        assert!(
            task.wait_timeout(Duration::from_millis(30)).is_none(),
            "{name}"
        );
        let started = Instant::now();
        drop(rt);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: drop took {:?}",
            started.elapsed()
        );
    }
    // Every M has exited: none is left spinning.
    let settled = Instant::now() + Duration::from_secs(10);
    while threads() > before && Instant::now() < settled {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(threads(), before, "every thread of the runtimes is gone");
}
