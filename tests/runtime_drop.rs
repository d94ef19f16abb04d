//! A host that makes and drops runtimes gets everything back: threads,
//! file descriptors (each runtime has a poller) and the actors' Lua states,
//! also after errors raised through blocking calls (a runtime handle held
//! across such a raise would never be freed).
//! One test in its own process, so no other test's threads or files count.

fn count(dir: &str) -> usize {
    std::fs::read_dir(dir).expect("procfs is there").count()
}

fn rss_kb() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs is there");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A runtime with a bit of everything that refers back to it: parked and
/// spinning goroutines, a ticker, a host channel, a spawned actor, a spare
/// M (a blocking call), and 4 MB of Lua heap.
fn make_and_drop() {
    let rt = lugo::Runtime::builder()
        .procs(2)
        .blocking_function("pause", |_, ()| {
            std::thread::sleep(std::time::Duration::from_millis(25));
            Ok(())
        })
        .build()
        .unwrap();
    let (tx, _rx) = rt.channel(1);
    rt.lua().globals().set("out", &tx).unwrap();
    rt.exec(
        r#"
        big = ("x"):rep(4 << 20)
        go(function() chan():recv() end)
        go(function() while true do end end)
        ticks = time.ticker(0.001)
        pause()
        out:send(1)
        "#,
    )
    .unwrap();
    rt.spawn_actor("local c = chan() c:recv()", ()).unwrap();
    drop(tx);
    drop(rt);
}

/// A runtime whose script raises through the blocking calls (the P is
/// handed back however the call ends): nothing of it may stay referenced,
/// or its poller's file descriptor stays open.
fn raise_through_blocking_calls_and_drop() {
    let rt = lugo::Runtime::builder().procs(1).build().unwrap();
    rt.exec(
        r#"
        assert(not pcall(io.read, "x"))
        assert(not pcall(io.lines, "/nonexistent/file"))
        assert(not pcall(os.execute, {}))
        assert(not pcall(function() for _ in io.lines("/dev/null", "x") do end end))
        "#,
    )
    .unwrap();
    drop(rt);
}

#[test]
fn dropping_a_runtime_frees_its_threads_files_and_states() {
    let (threads, fds) = (count("/proc/self/task"), count("/proc/self/fd"));
    // The first one warms up what lives for the process (the allocator).
    make_and_drop();
    let rss = rss_kb();
    for _ in 0..30 {
        make_and_drop();
    }
    for _ in 0..100 {
        raise_through_blocking_calls_and_drop();
    }
    // A thread that has finished its work may take a moment to be gone
    // (on a loaded machine): wait for the counts, a bounded while.
    let settled = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while (count("/proc/self/task"), count("/proc/self/fd")) != (threads, fds)
        && std::time::Instant::now() < settled
    {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(count("/proc/self/task"), threads, "threads left behind");
    assert_eq!(count("/proc/self/fd"), fds, "file descriptors left behind");
    // 30 runtimes with 4 MB strings each: 120 MB if their states leaked.
    let grown = rss_kb().saturating_sub(rss);
    assert!(grown < 40 << 10, "RSS grew by {grown} KB over 30 runtimes");
}
