//! A host runs an untrusted script in a sandbox: it cannot reach files, the
//! network or bytecode, its heap is capped, and its actors are stopped when
//! they use up their CPU budget, while the host goes on.
//!
//!     cargo run --release --example sandbox

use std::time::{Duration, Instant};

use lugo::mlua::MultiValue;
use lugo::{Outcome, Runtime};

/// The untrusted script: one actor loops forever, one allocates without
/// end, one does honest work; then the script itself spins.
const UNTRUSTED: &str = r#"
print("io is " .. tostring(io) .. ", loadfile is " .. tostring(loadfile))

local spinner = actor.spawn(function() while true do end end)
local hog = actor.spawn(function()
  local t = {}
  for i = 1, math.huge do t[i] = ("x"):rep(100) .. i end
end)
local honest = actor.spawn(function()
  local s = 0
  for i = 1, 1e5 do s = s + i end
  print("honest actor: sum = " .. s)
end)

print("spinner:", spinner:wait())
print("hog:    ", hog:wait())
print("honest: ", honest:wait())
while true do end
"#;

fn main() -> lugo::Result<()> {
    let rt = Runtime::builder()
        .procs(2)
        .sandbox(true)
        .memory_limit(16 << 20)
        .cpu_budget(Duration::from_millis(300))
        .build()?;
    let script = rt
        .lua()
        .load(UNTRUSTED)
        .set_name("=untrusted")
        .into_function()?;
    let start = Instant::now();
    let outcome = rt.run(script, MultiValue::new())?;
    match &outcome {
        Outcome::Panic(report) => println!("host: the script was stopped: {}", report.trim_end()),
        other => println!("host: the script ended: {other:?}"),
    }
    println!("host: still running after {:.2?}", start.elapsed());
    assert!(matches!(outcome, Outcome::Panic(r) if r.contains("cpu budget")));
    Ok(())
}
