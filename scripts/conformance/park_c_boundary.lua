-- park_c_boundary.lua: where Lua cannot yield (inside a C function such as
-- a string.gsub callback or a table.sort comparator) a goroutine cannot
-- park. The blocking call then fails with a Lua error, as coroutine.yield
-- would, and leaves nothing behind: no stale timer, no stale channel waiter.

local function blocked_in_c(f)
  return pcall(string.gsub, "a", "a", function() f() end)
end

-- sleep: fails, twice, and a real sleep afterwards works
for _ = 1, 2 do
  local ok = blocked_in_c(function() time.sleep(0.001) end)
  assert(not ok, "time.sleep inside a C call cannot park")
end
local ok = pcall(table.sort, { 3, 2, 1 }, function(a, b)
  time.sleep(0.001)
  return a < b
end)
assert(not ok, "time.sleep inside a sort comparator cannot park")
local t0 = time.now()
time.sleep(0.02)
assert(time.now() - t0 >= 0.019, "a later sleep is not cut short by a stale timer")
time.sleep(0.01)

-- recv: fails, and a later send is not swallowed by a stale waiter
local ch = chan()
ok = blocked_in_c(function() ch:recv() end)
assert(not ok, "recv inside a C call cannot park")
local sent = false
go(function()
  ch:send("v")
  sent = true
end)
time.sleep(0.01)
assert(not sent, "no receiver: the send must still be blocked")
local v = ch:recv()
assert(v == "v")

-- send: fails, and no value is delivered by a stale waiter
local ch2 = chan()
ok = blocked_in_c(function() ch2:send("ghost") end)
assert(not ok, "send inside a C call cannot park")
assert(chan.select({ "recv", ch2 }, { "default" }) == 2, "no ghost value")

-- select, lock, wait: fail likewise, and the objects work normally after
ok = blocked_in_c(function() chan.select({ "recv", chan() }, { "recv", ch2 }) end)
assert(not ok, "select inside a C call cannot park")
local mu = sync.mutex()
mu:lock()
ok = blocked_in_c(function() mu:lock() end)
assert(not ok, "lock inside a C call cannot park")
mu:unlock()
assert(mu:trylock() == true, "the failed lock did not take the mutex")
mu:unlock()
local wg = sync.waitgroup()
wg:add(1)
ok = blocked_in_c(function() wg:wait() end)
assert(not ok, "wait inside a C call cannot park")
wg:done()
wg:wait()

-- the same inside a goroutine
local res = chan()
go(function()
  local gok = blocked_in_c(function() time.sleep(0.001) end)
  time.sleep(0.005)
  res:send(gok)
end)
assert(res:recv() == false)

-- A coroutine resumed from inside a C call may yield to its resumer, as in
-- Lua, but it cannot park: no yield of it reaches the scheduler. The park
-- fails before it takes anything; the values stay for others.
local c2 = chan()
local sok, serr = pcall(table.sort, { 1, 2 }, function(a, b)
  local gen = coroutine.wrap(function() coroutine.yield("own") return c2:recv() end)
  assert(gen() == "own", "a user yield still works")
  gen()
  return a < b
end)
assert(not sok and serr:find("attempt to yield across a C-call boundary", 1, true), serr)
-- no waiter was left behind to swallow a value (it used to crash lugo)
go(function() c2:send("v1") c2:send("v2") end)
assert(c2:recv() == "v1" and c2:recv() == "v2", "nothing was taken")
-- ... and a preemption there waits for the C call to end: the coroutine
-- runs on undisturbed (a long loop gets preemption signals meanwhile)
local sum
table.sort({ 2, 1 }, function(a, b)
  if not sum then
    sum = coroutine.wrap(function()
      local s = 0
      for i = 1, 2e7 do s = s + i end
      return s
    end)()
  end
  return a < b
end)
assert(sum == 2e7 * (2e7 + 1) / 2)
-- runtime.gosched there does nothing; runtime.goexit unwinds the goroutine
-- through the C call (its <close> handlers run), as Go's Goexit would
table.sort({ 2, 1 }, function(a, b)
  coroutine.wrap(function() runtime.gosched() end)()
  return a < b
end)
local exited = chan(2)
go(function()
  local _ <close> = setmetatable({}, { __close = function() exited:send("closed") end })
  pcall(table.sort, { 2, 1 }, function(a, b)
    coroutine.wrap(function() runtime.goexit() end)()
    return a < b
  end)
  exited:send("not reached")
end)
assert(exited:recv() == "closed")
assert(exited:len() == 0)

print("ok")
