//! Embeds a Lua script and calls into it from Rust.
//!
//!     cargo run --release --example embed_call
//!
//! `Runtime::exec` runs the script, which defines global functions; the
//! host fetches them from the main actor's globals and calls them with
//! `Runtime::call`, which runs each call as a goroutine and waits for its
//! results. `pmap` fans its work out to one goroutine per element and
//! gathers the results over a channel, so the calls may park: a plain
//! `Function::call` could not. An error raised in Lua comes back as
//! `lugo::Error::Raised` with its message and Lua traceback. (`exec`
//! names its chunk after the Rust line that called it, as `Lua::load`
//! does: in `examples/embed_call.rs:L:N: ...`, L is that Rust line
//! and N the line in the script.)

use std::time::Instant;

use lugo::mlua::{Function, Table};
use lugo::{Error, Runtime, Shutdown};

const SCRIPT: &str = r#"
-- pmap(f, t): { f(t[1]), f(t[2]), ... }, each f(v) in its own goroutine.
function pmap(f, t)
  local done = chan(#t)
  for i, v in ipairs(t) do
    go(function() done:send({ i, f(v) }) end)
  end
  local out = {}
  for _ = 1, #t do
    local r = done:recv()
    out[r[1]] = r[2]
  end
  return out
end

-- squares(n): { 1, 4, ..., n*n }, each one after a 50 ms "lookup".
function squares(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return pmap(function(x) time.sleep(0.05) return x * x end, t)
end

local function check(account, amount)
  if amount > account.balance then
    error(("account %s: cannot withdraw %d, balance is %d"):format(account.id, amount, account.balance))
  end
  account.balance = account.balance - amount
  return account.balance
end

-- withdraw(account, amount): the new balance, or an error.
function withdraw(account, amount)
  local balance = check(account, amount)
  return balance
end
"#;

fn main() -> lugo::Result<()> {
    let rt = Runtime::builder().procs(2).build()?;
    rt.exec(SCRIPT)?;
    let globals = rt.lua().globals();

    // A Lua function that starts goroutines and waits on a channel.
    let squares: Function = globals.get("squares")?;
    let start = Instant::now();
    let sq: Vec<i64> = rt.call(&squares, 20)?;
    let took = start.elapsed();
    println!("squares(20) = {sq:?}");
    println!("  20 goroutines slept 50 ms each; the call took {took:.0?}");
    assert_eq!(sq, (1..=20).map(|i| i * i).collect::<Vec<i64>>());

    // The host passes its own arguments: a Lua function it made and a table.
    let pmap: Function = globals.get("pmap")?;
    let shout: Function = rt
        .lua()
        .load("function(s) return s:upper() .. '!' end")
        .eval()?;
    let words = vec!["go", "lua", "rust"];
    let loud: Vec<String> = rt.call(&pmap, (shout, words))?;
    println!("pmap(shout, {{go, lua, rust}}) = {loud:?}");
    assert_eq!(loud, ["GO!", "LUA!", "RUST!"]);

    // A table built by the host, changed by Lua, read back by the host.
    let withdraw: Function = globals.get("withdraw")?;
    let account: Table = rt.lua().create_table()?;
    account.set("id", "ACC-7")?;
    account.set("balance", 100)?;
    let left: i64 = rt.call(&withdraw, (&account, 30))?;
    println!("withdraw(ACC-7, 30) = {left}");
    assert_eq!(left, 70);
    assert_eq!(account.get::<i64>("balance")?, 70);

    // An error raised in Lua comes back as Error::Raised.
    match rt.call::<i64>(&withdraw, (&account, 500)) {
        Err(Error::Raised { message, traceback }) => {
            println!("withdraw(ACC-7, 500) raised:");
            println!("  message: {message}");
            for line in traceback.lines() {
                println!("  {line}");
            }
            assert!(
                message.ends_with("account ACC-7: cannot withdraw 500, balance is 70"),
                "{message}"
            );
            assert!(traceback.starts_with("stack traceback:"), "{traceback}");
            assert!(traceback.contains("in function 'withdraw'"), "{traceback}");
        }
        other => panic!("expected Error::Raised, got {other:?}"),
    }
    // The failed call changed nothing, and the runtime goes on.
    assert_eq!(account.get::<i64>("balance")?, 70);
    let again: i64 = rt.call(&withdraw, (&account, 70))?;
    assert_eq!(again, 0);

    drop(globals);
    rt.shutdown(Shutdown::Wait)?;
    println!("shut down: every goroutine has ended");
    Ok(())
}
