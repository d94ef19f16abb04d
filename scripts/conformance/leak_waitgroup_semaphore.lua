-- runtime.leaks(), case 11: a goroutine in wg:wait() on a wait group
-- that nothing else holds is leaked, and so is one in sem:acquire() on a
-- semaphore whose units nothing that can run holds. When the wait group
-- or semaphore is reachable (a global, an upvalue of a goroutine that
-- can still run), its waiters are not leaked. (A send on a buffered
-- channel with room never parks: nothing to test there.)

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

-- A waiter on a wait group with one pending count nothing will ever
-- mark done.
local function wg_waiter()
  local wg = sync.waitgroup()
  wg:add(1)
  return go(function() wg:wait() end)
end
-- Several waiters on one such wait group.
local function wg_waiters(n)
  local wg = sync.waitgroup()
  wg:add(2)
  wg:done()
  local ids = {}
  for i = 1, n do ids[i] = go(function() wg:wait() end) end
  return ids
end
-- A waiter on a semaphore whose only unit is taken (by the caller, who
-- lets go of the semaphore).
local function sem_waiter(n, k)
  local sem = sync.semaphore(n)
  sem:acquire(n)
  return go(function() sem:acquire(k) end)
end

STOP = false
-- A wait group whose done a running goroutine holds (in an upvalue).
local function wg_with_runner()
  local wg = sync.waitgroup()
  wg:add(1)
  local w = go(function() wg:wait() end)
  local r = go(function()
    while not STOP do runtime.gosched() end
    wg:done()
  end)
  return w, r
end

local l1 = wg_waiter()
local l2 = wg_waiters(3)
local l3 = sem_waiter(1, 1)
local l4 = sem_waiter(3, 2)
WG = sync.waitgroup()
WG:add(1)
SEM = sync.semaphore(2)
SEM:acquire(2)
local f1 = go(function() WG:wait() end)
local f2 = go(function() SEM:acquire() end)
local f3, runner = wg_with_runner()

local leaked = { l1, l3, l4, table.unpack(l2) }
leaks.settle(leaked, "semacquire")
leaks.settle({ f1, f2, f3 }, "semacquire")
local got = runtime.leaks()
leaks.exactly(got, leaked, "wait groups and semaphores")
local wr = leaks.find(got, l1)
assert(wr.waiting_on and wr.waiting_on:find("wait", 1, true), tostring(wr.waiting_on))
local sr = leaks.find(got, l3)
assert(sr.waiting_on and sr.waiting_on:find("semaphore", 1, true), tostring(sr.waiting_on))

-- The reachable ones are woken through what holds them.
WG:done()
SEM:release(1)
STOP = true
for _, id in ipairs({ f1, f2, f3, runner }) do leaks.gone(id) end
leaks.check(leaked, "the reachable waiters were woken")
print("ok")
