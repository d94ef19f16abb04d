//! The network module against real sockets on loopback: descriptors are
//! not leaked, a peer that resets only hurts its own connection, and a
//! goroutine waiting on a socket is not a deadlock.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::Duration;

use common::{lugo, read_stderr, run, spawn_ready};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Starts the example echo server on a free port; returns it and the port.
fn echo_server() -> (Child, u16) {
    let (child, line, _) = spawn_ready(lugo().args(["scripts/examples/echo_server.lua", "0"]));
    let port = line
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    (child, port)
}

fn echo_once(port: u16, msg: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{msg}\n").as_bytes()).unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line.trim_end().to_string()
}

#[test]
fn echo_server_serves_clients() {
    let (mut server, port) = echo_server();
    for i in 0..20 {
        assert_eq!(echo_once(port, &format!("ping {i}")), format!("ping {i}"));
    }
    let out = run(
        lugo().args([
            "scripts/examples/echo_client.lua",
            &format!("127.0.0.1:{port}"),
            "one",
            "two",
        ]),
        None,
        TIMEOUT,
    );
    assert_eq!(out.stdout, "one\ntwo\n", "{}", out.describe());
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn an_echo_server_on_every_core_serves_all_its_clients() {
    // Two actors, each with its own listener on one port (reuseport):
    // every connection is served, whichever listener the kernel gives it.
    let (mut server, line, _) =
        spawn_ready(lugo().args(["scripts/examples/echo_server_cores.lua", "0", "2"]));
    assert!(line.ends_with("(2 actors)"), "{line}");
    let port: u16 = line
        .split(':')
        .nth(1)
        .and_then(|p| p.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    std::thread::scope(|s| {
        for t in 0..8 {
            s.spawn(move || {
                for i in 0..10 {
                    let msg = format!("client {t} line {i}");
                    assert_eq!(echo_once(port, &msg), msg);
                }
            });
        }
    });
    server.kill().unwrap();
    server.wait().unwrap();
}

#[test]
fn a_peer_that_resets_hurts_only_its_connection() {
    let (mut server, port) = echo_server();
    for _ in 0..20 {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        // Half a line, then a reset (linger 0): the server's read fails.
        (&s).write_all(b"half a li").unwrap();
        socket2::SockRef::from(&s)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(s);
    }
    assert_eq!(echo_once(port, "still serving"), "still serving");
    server.kill().unwrap();
    server.wait().unwrap();
}

/// Lua that defines `fds()`: how many descriptors the lugo process has
/// open (the pipe of the `ls` that counts them included).
const FDS: &str = r#"
local stat = io.open("/proc/self/stat")
local pid = stat:read("l"):match("^(%d+)")
stat:close()
local function fds()
  local p = io.popen("ls /proc/" .. pid .. "/fd | wc -l")
  local n = p:read("n")
  p:close()
  return n
end
-- The fewest descriptors over a moment: one still closing, or one of
-- the count itself, is not a leak; a leak stays.
local function fewest_fds()
  local n = fds()
  for _ = 1, 5 do
    time.sleep(0.02)
    n = math.min(n, fds())
  end
  return n
end
"#;

/// Runs `script` with `lugo -e`, which must succeed printing `n` integers.
fn numbers_printed(script: &str, n: usize) -> Vec<i64> {
    let out = run(lugo().args(["-e", script]), None, TIMEOUT);
    assert_eq!(out.code(), Some(0), "{}", out.describe());
    let v: Vec<i64> = out
        .stdout
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(v.len(), n, "{}", out.describe());
    v
}

#[test]
fn connect_close_cycles_leave_no_descriptor_behind() {
    let script = [
        FDS,
        r#"
local l = assert(net.listen("127.0.0.1:0"))
go(function()
  while true do
    local s = l:accept()
    if not s then return end
    s:close()
  end
end)
runtime.gc()
local before = fds()
for _ = 1, 10000 do
  local c = assert(net.dial(l:addr()))
  c:close()
end
-- The server closes its ends asynchronously: wait (bounded) for it.
local after, deadline = fds(), time.now() + 5
while after ~= before and time.now() < deadline do
  runtime.gc()
  time.sleep(0.01)
  after = fds()
end
print(before, after)
"#,
    ]
    .concat();
    let v = numbers_printed(&script, 2);
    assert_eq!(v[0], v[1], "descriptors before and after 10,000 cycles");
}

#[test]
fn waiting_on_a_socket_is_not_a_deadlock() {
    let (mut child, addr, mut out) = spawn_ready(lugo().args([
        "-e",
        r#"
local l = assert(net.listen("127.0.0.1:0"))
print(l:addr()) io.stdout:flush()
local c = assert(l:accept())
print("accepted " .. c:readline())
"#,
    ]));
    // Every goroutine waits on the network for a while.
    std::thread::sleep(Duration::from_millis(300));
    let mut s = TcpStream::connect(addr.trim()).unwrap();
    s.write_all(b"hi\n").unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let err = read_stderr(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "stderr: {err}");
    assert_eq!(rest.trim(), "accepted hi");
}

/// Raises this process's open-file limit to its hard limit (children
/// inherit it); returns the soft limit now.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        let wanted = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
            return lim.rlim_max;
        }
    }
    lim.rlim_cur
}

#[test]
fn soak_many_connections_at_once_every_byte_echoed_nothing_left_behind() {
    // 2,000 connections open at once (fewer if the system allows fewer
    // descriptors), each echoing lines, three rounds: every line comes
    // back, the descriptors return to their count before, the memory the
    // actor holds returns to its size after the first round, and the
    // resident memory stays about flat.
    let n = 2000.min((raise_fd_limit().saturating_sub(200) / 2) as usize);
    assert!(n >= 200, "too few descriptors for a soak test: {n}");
    let script = [
        FDS,
        r#"
local N, LINES = N_CONNS, 3
local function rss()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmRSS:%s*(%d+)")
    if kb then return tonumber(kb) end
  end
end
local l = assert(net.listen("127.0.0.1:0", { backlog = 4096 }))
go(dofile("scripts/examples/echo.lua").serve, l)
runtime.gc()
local before, sizes, held = fewest_fds(), {}, {}
local gs = runtime.stats().goroutines
for round = 1, 3 do
  local conns, done = {}, chan(N)
  for i = 1, N do conns[i] = assert(net.dial(l:addr())) end
  for i = 1, N do
    go(function()
      local c = conns[i]
      for j = 1, LINES do
        local msg = ("round %d conn %d line %d"):format(round, i, j)
        assert(c:write(msg .. "\n"))
        assert(c:readline() == msg)
      end
      c:close()
      done:send(true)
    end)
  end
  for _ = 1, N do done:recv() end
  conns = nil
  -- The server closes its ends as it reads their end, and its
  -- goroutines end after: wait for both (bounded).
  local deadline = time.now() + 10
  repeat
    runtime.gc()
    time.sleep(0.01)
  until (fds() == before and runtime.stats().goroutines == gs) or time.now() > deadline
  -- Finalized objects are freed by the collection after.
  for _ = 1, 3 do runtime.gc() end
  sizes[round] = rss()
  held[round] = runtime.stats().memory
end
print(before, fewest_fds(), sizes[2], sizes[3], held[1], held[3])
"#,
    ]
    .concat()
    .replace("N_CONNS", &n.to_string());
    let v = numbers_printed(&script, 6);
    assert_eq!(
        v[0], v[1],
        "descriptors before and after {n} x 3 connections"
    );
    // What the actor holds (its heap and its sockets' buffers, after full
    // collections) is back where it was after the first round: a leak
    // of 16 bytes or more per connection shows here.
    assert!(
        v[5] <= v[4] + (64 << 10),
        "the actor held {} bytes after round 1, {} after round 3",
        v[4],
        v[5]
    );
    // Resident memory, which the allocator's caching makes noisy: the
    // third round within a quarter (and 4 MB) of the second.
    assert!(
        v[3] <= v[2] + v[2] / 4 + 4096,
        "RSS grew from {} KB to {} KB in a round of {n} connections",
        v[2],
        v[3]
    );
}
