-- runtime.leaks(), case 4: a channel reachable only through a pending
-- timer is not leaked: the callback of a pending time.afterfunc (it runs
-- later and may use the channel), the channel of a pending time.after or
-- time.timer (the runtime sends on it when the timer fires). Once an
-- afterfunc is stopped and nothing else holds it, its channel's waiter
-- is leaked; a timer that fires wakes its waiter as it should.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

-- A waiter on a fresh channel that only a pending afterfunc's callback
-- holds; the timer object is returned (the caller may drop it).
local function afterfunc_holder(d)
  local ch = chan()
  local w = go(function() ch:recv() end)
  return w, time.afterfunc(d, function() ch:send("fired") end)
end

-- A waiter on the channel of a pending time.after; one on the channel of
-- a pending time.timer that nothing else holds.
local function after_waiter(d)
  return go(function() time.after(d):recv() end)
end
local function timer_waiter(d)
  local t = time.timer(d)
  return go(function() t.c:recv() end)
end

local control = go(function() chan():recv() end)
local w1 = afterfunc_holder(3600) -- its timer object dropped at once
local w2, t2 = afterfunc_holder(3600)
leaks.settle({ control, w1, w2 }, "chan receive")
leaks.check({ control }, "pending afterfuncs hold the channels")
leaks.check({ control }, "again")

-- The second timer is stopped, and the script lets go of it: its
-- callback will never run, nothing else holds the channel.
assert(t2:stop() == true)
t2 = nil
leaks.check({ control, w2 }, "the afterfunc was stopped")

-- A short afterfunc fires and wakes its waiter: never reported.
local w3 = afterfunc_holder(0.05)
leaks.settle({ w3 }, "chan receive")
leaks.check({ control, w2 }, "a short afterfunc pending")
leaks.gone(w3)
leaks.check({ control, w2 }, "the short afterfunc fired")

-- Waiters on timers' channels, next to the leaked ones (which they do
-- not hide); then the leaked ones are ended.
local w4 = after_waiter(3600)
local w5 = timer_waiter(3600)
local w6 = after_waiter(0.05)
leaks.settle({ w4, w5, w6 }, "chan receive")
leaks.check({ control, w2 }, "pending timers' channels")
leaks.gone(w6)
leaks.check({ control, w2 }, "a time.after fired")
leaks.exactly(runtime.reclaim(), { control, w2 }, "reclaimed")
leaks.gone(control)
leaks.gone(w2)
leaks.check({}, "after the reclaim")
print("ok")
