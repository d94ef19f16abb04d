-- sync_waitgroup.lua: sync.waitgroup() with :add(n), :done(), :wait().

local function has(err, needle)
  return string.find(tostring(err), needle, 1, true) ~= nil
end

-- wait returns after every goroutine called done, and sees their effects
local wg = sync.waitgroup()
local N = 50
local finished = 0
wg:add(N)
for _ = 1, N do
  go(function()
    time.sleep(0.001)
    finished = finished + 1
    wg:done()
  end)
end
wg:wait()
assert(finished == N, "wait returned after all done: " .. finished)

-- wait on a zero counter returns at once (main alone: a block would be a
-- deadlock)
local zero = sync.waitgroup()
zero:wait()
zero:add(0)
zero:wait()

-- add one by one
local wg2 = sync.waitgroup()
local count = 0
for _ = 1, 10 do
  wg2:add(1)
  go(function()
    count = count + 1
    wg2:done()
  end)
end
wg2:wait()
assert(count == 10)

-- wait blocks until the last done
local wg3 = sync.waitgroup()
wg3:add(2)
local released = false
local out = chan()
go(function()
  wg3:wait()
  released = true
  out:send(true)
end)
for _ = 1, 10 do runtime.gosched() end
time.sleep(0.01)
assert(not released, "wait blocks while the counter is positive")
wg3:done()
time.sleep(0.01)
assert(not released, "wait blocks while the counter is still 1")
wg3:done()
assert(out:recv() == true and released)

-- several waiters are all released
local wg4 = sync.waitgroup()
wg4:add(1)
local waiters = chan(5)
for k = 1, 5 do
  go(function()
    wg4:wait()
    waiters:send(k)
  end)
end
time.sleep(0.005)
wg4:done()
local s = 0
for _ = 1, 5 do s = s + waiters:recv() end
assert(s == 15)

-- add with a negative delta; reaching zero releases waiters
local wg5 = sync.waitgroup()
wg5:add(3)
wg5:add(-2)
go(function() wg5:done() end)
wg5:wait()

-- reuse after wait
wg:add(1)
go(function() wg:done() end)
wg:wait()

-- a negative counter raises an error
local bad = sync.waitgroup()
local ok, err = pcall(bad.done, bad)
assert(not ok, "done below zero fails")
assert(has(err, "negative"), "message: " .. tostring(err))
local bad2 = sync.waitgroup()
bad2:add(1)
ok, err = pcall(function() bad2:add(-2) end)
assert(not ok and has(err, "negative"), "message: " .. tostring(err))

-- done from main, wait in a goroutine
local wg6 = sync.waitgroup()
wg6:add(1)
go(function()
  wg6:wait()
  out:send("after wait")
end)
wg6:done()
assert(out:recv() == "after wait")

-- fan-out / fan-in with results collected in a table
local wg7 = sync.waitgroup()
local results = {}
for k = 1, 20 do
  wg7:add(1)
  go(function()
    local c = chan(1)
    c:send(k * k)
    results[k] = c:recv()
    wg7:done()
  end)
end
wg7:wait()
for k = 1, 20 do assert(results[k] == k * k) end

print("ok")
