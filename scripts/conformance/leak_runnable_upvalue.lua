-- runtime.leaks(), case 2: a channel reachable only through an upvalue of
-- a goroutine that can still run (runnable: a loop of runtime.gosched();
-- or asleep in time.sleep) is not leaked: that goroutine may still use
-- it. Once that goroutine has ended (or been interrupted) without using
-- it, the waiter is leaked.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

STOP = false
local looped = chan(1)

-- Returns the ids of a waiter on a fresh channel, and of a goroutine
-- that holds that channel in an upvalue and keeps running until STOP.
local function runnable_holder()
  local ch = chan()
  local waiter = go(function() ch:recv() end)
  local holder = go(function()
    while not STOP do runtime.gosched() end
    looped:send(true)
    if STOP == "use" then ch:send("late") end
  end)
  return waiter, holder
end

-- The same with a holder asleep (it would send after an hour).
local function sleeping_holder()
  local ch = chan()
  local waiter = go(function() ch:recv() end)
  local holder = go(function()
    time.sleep(3600)
    ch:send("late")
  end)
  return waiter, holder
end

local w1, h1 = runnable_holder()
local w2, h2 = sleeping_holder()
local control = go(function() chan():send(1) end)
leaks.settle({ w1, w2 }, "chan receive")
leaks.settle({ h2 }, "sleep")
leaks.settle({ control }, "chan send")
leaks.check({ control }, "holders can run")
-- Several checks while the holder keeps looping.
for _ = 1, 5 do
  runtime.gosched()
  leaks.check({ control }, "holders can still run")
end

-- The runnable holder ends without using its channel: its waiter is
-- leaked now.
STOP = true
assert(looped:recv())
leaks.gone(h1)
leaks.check({ control, w1 }, "runnable holder ended")

-- The sleeping holder is interrupted: its waiter is leaked too.
assert(runtime.interrupt(h2))
leaks.gone(h2)
leaks.check({ control, w1, w2 }, "sleeping holder interrupted")

-- A holder that does use its channel: nothing leaked, and the waiter
-- gets the value.
STOP = false
local w3, h3 = runnable_holder()
leaks.settle({ w3 }, "chan receive")
leaks.check({ control, w1, w2 }, "a third holder runs")
STOP = "use"
assert(looped:recv())
leaks.gone(h3)
leaks.gone(w3)
leaks.check({ control, w1, w2 }, "the third holder woke its waiter")
print("ok")
