-- context: cancellation, deadlines, values, causes; the blocking calls
-- that take a context; contexts across actors; no value lost or doubled
-- when a cancellation races a send or a receive; a cancelled sleep
-- releases its timer.

local fails = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua").fails

local bg = context.background()
assert(bg:err() == nil and bg:deadline() == nil and bg:cause() == nil)
assert(tostring(bg):find("^context: ") and getmetatable(bg) == "context")

-- withcancel: done closes, err and cause are set, once.
local ctx, cancel = bg:withcancel()
assert(ctx:err() == nil)
assert(chan.select({ "recv", ctx:done() }, { "default" }) == 2)
cancel("shutting down")
assert(ctx:err() == "context canceled" and ctx:cause() == "shutting down")
local _, v, ok = chan.select({ "recv", ctx:done() }, { "default" })
assert(v == nil and ok == false, "done is closed")
cancel("again")
assert(ctx:cause() == "shutting down", "cancelled once")
-- Without a cause, the cause is the error (Go's context.Cause).
local c1, k1 = bg:withcancel()
k1()
assert(c1:cause() == "context canceled")

-- Children end with their parent, with its error and cause; a child made
-- under an ended parent is ended at once; a value context ends with its.
local p, pcancel = bg:withcancel()
local child = p:withcancel()
local grand = child:withvalue("k", "v"):withtimeout(60)
pcancel({ reason = "table cause" })
assert(child:err() == "context canceled" and grand:err() == "context canceled")
assert(grand:cause().reason == "table cause")
local late = p:withcancel()
assert(late:err() == "context canceled")
-- A child's cancel does not reach its parent.
local p2, p2cancel = bg:withcancel()
local c2, c2cancel = p2:withcancel()
c2cancel()
assert(c2:err() and p2:err() == nil)
p2cancel()

-- Deadlines: err is "context deadline exceeded"; an earlier parent
-- deadline wins; a deadline already passed ends the context at once.
local t0 = time.now()
local d, dcancel = bg:withtimeout(0.02)
assert(math.abs(d:deadline() - (t0 + 0.02)) < 0.01)
assert(d:done():recv() == nil)
assert(d:err() == "context deadline exceeded" and time.now() - t0 >= 0.019)
dcancel()
local short = bg:withtimeout(0.01)
local long = short:withtimeout(60)
assert(long:deadline() == short:deadline())
long:done():recv()
assert(long:err() == "context deadline exceeded")
assert(bg:withdeadline(time.now() - 1):err() == "context deadline exceeded")
assert(bg:withtimeout(0):err() == "context deadline exceeded")

-- Values: keys by value (2 and 2.0 are one key), the nearest wins, copies.
local vc = bg:withvalue("user", { name = "ann" }):withvalue(2, "two"):withvalue("user", "bob")
assert(vc:value("user") == "bob" and vc:value(2.0) == "two" and vc:value("none") == nil)
assert(bg:withvalue(true, { 1 }):value(true)[1] == 1)

-- The blocking calls that take a context.
local ch = chan()
local c3, k3 = bg:withcancel()
go(function() time.sleep(0.01) k3() end)
local rv, rok, rerr = ch:recv(c3)
assert(rv == nil and rok == false and rerr == "context canceled")
local sent, serr = ch:send("x", c3)
assert(sent == false and serr == "context canceled")
local slept, slerr = time.sleep(10, c3)
assert(slept == false and slerr == "context canceled")
local buffered = chan(1)
assert(buffered:send("y", bg) == true)
local gv, gok = buffered:recv(bg)
assert(gv == "y" and gok == true)
assert(time.sleep(0.001, bg) == true)

-- A cancellation wakes every waiter at once, whatever it waits in.
local c4, k4 = bg:withcancel()
local woke = chan(100)
for i = 1, 100 do
  if i % 3 == 0 then
    go(function() woke:send(select(3, chan():recv(c4))) end)
  elseif i % 3 == 1 then
    go(function() woke:send(select(2, time.sleep(60, c4))) end)
  else
    go(function() chan.select({ "recv", c4:done() }) woke:send(c4:err()) end)
  end
end
time.sleep(0.01)
local t1 = time.now()
k4()
for _ = 1, 100 do assert(woke:recv() == "context canceled") end
assert(time.now() - t1 < 0.5)

-- A cancelled sleep releases its timer.
local base = runtime.stats().timers
local cancels = {}
for i = 1, 1000 do
  local c5, k5 = bg:withcancel()
  cancels[i] = k5
  go(function() time.sleep(60, c5) end)
end
-- Every sleeper parks with a timer (bounded wait: they start in turn).
for _ = 1, 500 do
  if runtime.stats().timers >= base + 1000 then break end
  time.sleep(0.01)
end
assert(runtime.stats().timers >= base + 1000, "the sleepers hold their timers")
for i = 1, 1000 do cancels[i]() end
for _ = 1, 100 do
  if runtime.stats().timers <= base then break end
  time.sleep(0.01)
end
assert(runtime.stats().timers <= base, runtime.stats().timers .. " timers left")
-- 100,000 sleeps cancelled one after another: the timer heap is back
-- where it was.
for i = 1, 100000 do
  local c7, k7 = bg:withcancel()
  go(function() time.sleep(60, c7) end)
  runtime.gosched() -- it parks, its timer set
  if i % 1000 == 0 then
    assert(runtime.stats().timers > base, "the sleeper holds a timer")
  end
  k7()
end
for _ = 1, 100 do
  if runtime.stats().timers <= base then break end
  time.sleep(0.01)
end
assert(runtime.stats().timers <= base, runtime.stats().timers .. " timers left")

-- Races: a value sent while the context is cancelled is received exactly
-- once or reported as not sent.
for _ = 1, 1000 do
  local c6, k6 = bg:withcancel()
  local rch = chan()
  local got = chan(1)
  go(function() got:send({ rch:recv(c6) }) end)
  go(function() k6() end)
  local s = rch:send("v", c6)
  local r = got:recv()
  if s == true then
    assert(r[1] == "v" and r[2] == true, "sent: received once")
  else
    assert(r[1] == nil and r[3] == "context canceled", "not sent: not received")
  end
end

-- A mutex, a wait group and a semaphore waited for with a context: false
-- and the error when it ends first; what the wait took meanwhile is given
-- back (the next trylock succeeds).
local mu = sync.mutex()
mu:lock()
local mctx = bg:withtimeout(0.02)
local locked, lerr = mu:lock(mctx)
assert(locked == false and lerr == "context deadline exceeded", tostring(lerr))
mu:unlock()
local retaken = false
for _ = 1, 100 do
  retaken = mu:trylock()
  if retaken then break end
  time.sleep(0.001)
end
assert(retaken, "the helper gave the lock back")
mu:unlock()
assert(mu:lock(bg) == true)
mu:unlock()
local wg = sync.waitgroup()
wg:add(1)
local waited, werr = wg:wait(bg:withtimeout(0.01))
assert(waited == false and werr == "context deadline exceeded")
wg:done()
assert(wg:wait(bg) == true)
local sem = sync.semaphore(2)
sem:acquire(2)
local acq, aerr = sem:acquire(2, (bg:withtimeout(0.01)))
assert(acq == false and aerr == "context deadline exceeded")
sem:release(2)
local reacquired = false
for _ = 1, 100 do
  reacquired = sem:tryacquire(2)
  if reacquired then break end
  time.sleep(0.001)
end
assert(reacquired, "the helper gave the units back")
sem:release(2)
assert(sem:acquire(bg) == true and sem:acquire(1, bg) == true)
sem:release(2)

-- Across actors: one cancel wakes the other actor's waiters.
local c7, k7 = bg:withcancel()
local h = actor.spawn(function(ctx)
  local _, _, err = chan():recv(ctx)
  return err, ctx:cause()
end, c7)
time.sleep(0.01)
k7("from main")
local hok, herr, hcause = h:wait()
assert(hok and herr == "context canceled" and hcause == "from main")

-- Bad input.
fails(function() bg:withtimeout("1") end, "ctx:withtimeout: timeout must be a number, got string")
fails(function() bg:withdeadline(0 / 0) end, "ctx:withdeadline: deadline must not be NaN")
fails(function() bg:withvalue({}, 1) end, "ctx:withvalue: key must be a string, number or boolean, got table")
fails(function() bg:withvalue("f", print) end, "ctx:withvalue: cannot send a function at value")
-- A userdata that is not a context is refused; other extra arguments are
-- ignored as ever (`ch:send(other:recv())` passes `ok` along).
fails(function() ch:recv(chan()) end, "ch:recv: context expected, got userdata")
fails(function() ch:send(1, io.stdout) end, "ch:send: context expected, got userdata")
fails(function() time.sleep(1, chan()) end, "time.sleep: context expected, got userdata")
local pass = chan(1)
pass:send(7, true)
assert(pass:recv("ignored") == 7)
assert(time.sleep(0, "ignored") == nil)
fails(function() bg.err(5) end, "ctx:err: context expected, got number")
print("ok")
