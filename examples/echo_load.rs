//! Load client for echo servers (the net benchmark, scripts/bench/net.sh).
//!
//!     cargo run --release --example echo_load -- ADDR [CONNS] [ROUNDS]
//!     cargo run --release --example echo_load -- ADDR --idle N SECONDS
//!
//! Round-trip mode: CONNS connections (default 100), each doing ROUNDS
//! (default 2000) round trips of a 64-byte line, all at once; prints
//! `rps=... p50_us=... p99_us=...`. Idle mode: opens N connections and
//! holds them SECONDS seconds, printing `idle=N` once all are open.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

fn round_trips(addr: &str, conns: usize, rounds: usize) {
    let start = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|c| {
            let addr = addr.to_string();
            std::thread::spawn(move || {
                let s = TcpStream::connect(&addr).expect("connect");
                s.set_nodelay(true).unwrap();
                let mut w = s.try_clone().unwrap();
                let mut r = BufReader::new(s);
                let mut msg = format!("{c:04} ").into_bytes();
                msg.resize(63, b'x');
                msg.push(b'\n');
                let mut line = Vec::with_capacity(64);
                let mut lat = Vec::with_capacity(rounds);
                for _ in 0..rounds {
                    let t = Instant::now();
                    w.write_all(&msg).unwrap();
                    line.clear();
                    r.read_until(b'\n', &mut line).unwrap();
                    assert_eq!(line, msg, "echo mismatch");
                    lat.push(t.elapsed().as_micros() as u64);
                }
                lat
            })
        })
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect();
    let secs = start.elapsed().as_secs_f64();
    all.sort_unstable();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "rps={:.0} p50_us={} p99_us={}",
        all.len() as f64 / secs,
        pct(0.50),
        pct(0.99)
    );
}

fn idle(addr: &str, n: usize, secs: u64) {
    let conns: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    println!("idle={}", conns.len());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(secs));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let addr = args
        .first()
        .expect("usage: echo_load ADDR [CONNS] [ROUNDS] | ADDR --idle N SECONDS");
    if args.get(1).map(String::as_str) == Some("--idle") {
        let n = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1000);
        let secs = args.get(3).and_then(|v| v.parse().ok()).unwrap_or(2);
        idle(addr, n, secs);
    } else {
        let conns = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(100);
        let rounds = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(2000);
        round_trips(addr, conns, rounds);
    }
}
