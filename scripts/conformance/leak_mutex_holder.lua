-- runtime.leaks(), case 7: a goroutine waiting on a mutex (or an
-- rwmutex, as reader or writer) that a leaked goroutine holds, and that
-- nothing else holds, is leaked with it; the holder is leaked on a
-- channel nothing holds. When the mutex itself is reachable from a
-- global, its waiter is not leaked (any goroutine may unlock a mutex, as
-- in Go), though the holder still is.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

-- The holder locks, then parks on a fresh channel for good; the waiter
-- then waits for the lock. Both hold the mutex only in their upvalues.
local function locked_pair(mu, lock)
  lock = lock or "lock"
  local holder = go(function()
    mu:lock()
    chan():recv()
    mu:unlock()
  end)
  leaks.settle({ holder }, "chan receive")
  local waiter = go(function()
    mu[lock](mu)
  end)
  leaks.settle({ waiter }, "semacquire")
  return holder, waiter
end

local h1, w1 = locked_pair(sync.mutex())
local h2, w2 = locked_pair(sync.rwmutex(), "rlock")
local h3, w3 = locked_pair(sync.rwmutex(), "lock")
-- A mutex a global holds: its waiter is not leaked.
SHARED = sync.mutex()
local h4, w4 = locked_pair(SHARED)
local got = runtime.leaks()
leaks.exactly(got, { h1, w1, h2, w2, h3, w3, h4 }, "mutex holders and waiters")
for _, id in ipairs({ w1, w2, w3 }) do
  local r = leaks.find(got, id)
  assert(r.state == "semacquire", r.state)
  assert(r.waiting_on and r.waiting_on:find("mutex", 1, true), tostring(r.waiting_on))
end
assert(leaks.find(got, h1).state == "chan receive")

-- Unlocking the global mutex (from another goroutine than its holder)
-- lets its waiter in.
SHARED:unlock()
leaks.gone(w4)
leaks.check({ h1, w1, h2, w2, h3, w3, h4 }, "the shared mutex's waiter got it")
print("ok")
