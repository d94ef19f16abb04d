-- time_sleep.lua: time.sleep parks only the calling goroutine; time.now is
-- a monotonic clock in float seconds.

local SLACK = 0.001 -- clock granularity allowance

-- time.now: float seconds, never going backwards
local t0 = time.now()
assert(math.type(t0) == "float", "time.now() is a float")
local prev = t0
for _ = 1, 1000 do
  local t = time.now()
  assert(t >= prev, "time.now() is monotonic")
  prev = t
end

-- sleep lasts at least as long as asked
local function elapsed_of(d)
  local s = time.now()
  time.sleep(d)
  return time.now() - s
end
for _, d in ipairs({ 0.001, 0.01, 0.05 }) do
  local e = elapsed_of(d)
  assert(e >= d - SLACK, "sleep(" .. d .. ") took only " .. e)
  assert(e < d + 1, "sleep(" .. d .. ") took " .. e)
end
-- integer seconds are accepted; zero returns
local e0 = elapsed_of(0)
assert(e0 >= 0 and e0 < 1)

-- sleeping in a goroutine does not block the others: while one goroutine
-- sleeps 0.5 s, main and another goroutine exchange 100 values (with
-- --procs 1 too: the sleep parks the goroutine, never the thread)
local sleeper_awake = false
go(function()
  time.sleep(0.5)
  sleeper_awake = true
end)
local ping = chan()
go(function()
  for i = 1, 100 do ping:send(i) end
end)
for i = 1, 100 do assert(ping:recv() == i) end
assert(not sleeper_awake, "the exchange did not wait for the sleeper")

-- a goroutine sleeping 0.2 s wakes after one sleeping 0 s has run
local order = chan(2)
go(function()
  time.sleep(0.2)
  order:send("slow")
end)
go(function()
  time.sleep(0)
  order:send("fast")
end)
assert(order:recv() == "fast")
assert(order:recv() == "slow")

-- many concurrent sleepers finish in about one sleep, not the sum
local n = 1000
local wg = sync.waitgroup()
wg:add(n)
local s = time.now()
for _ = 1, n do
  go(function()
    time.sleep(0.05)
    wg:done()
  end)
end
wg:wait()
local total = time.now() - s
assert(total >= 0.05 - SLACK, "sleepers slept")
assert(total < 2, "1000 concurrent 50 ms sleeps took " .. total .. " s")

-- each sleeper individually slept long enough
local short = chan(50)
for _ = 1, 50 do
  go(function()
    local a = time.now()
    time.sleep(0.02)
    short:send(time.now() - a)
  end)
end
for _ = 1, 50 do
  local e = short:recv()
  assert(e >= 0.02 - SLACK, "a concurrent sleep lasted only " .. e)
end

-- sleep inside pcall works and returns nothing special
local ok = pcall(time.sleep, 0.001)
assert(ok)

print("ok")
