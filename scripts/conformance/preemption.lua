-- preemption.lua: a goroutine running a loop that never parks does not keep
-- the other goroutines of its actor from running (sysmon preempts it), at
-- the top of a goroutine, in main and inside a nested coroutine.

local function spin_until(cond)
  local deadline = time.now() + 5
  while not cond() and time.now() < deadline do end
  return cond()
end

-- main spins; a runnable goroutine must get to run
local flag = false
go(function() flag = true end)
assert(spin_until(function() return flag end), "main was never preempted")

-- a goroutine spins; main (woken by a timer) must get to run
local spinning = true
local spun = chan(1)
go(function()
  local n = 0
  while spinning do n = n + 1 end
  spun:send(n)
end)
time.sleep(0.02) -- main wakes only if the spinner is preempted
spinning = false
assert(spun:recv() > 0)

-- a spin inside a nested coroutine; the preemption reaches the scheduler
-- and the user's coroutine carries on unharmed afterwards
local flag2 = false
local done = chan()
go(function()
  local gen = coroutine.wrap(function()
    go(function() flag2 = true end) -- runnable only once the spinner is preempted
    local ok = spin_until(function() return flag2 end)
    coroutine.yield(ok)
    coroutine.yield("second")
  end)
  local a = gen()
  local b = gen()
  done:send({ a, b, coroutine.isyieldable() })
end)
local r = done:recv()
assert(r[1] == true, "the nested spinner was never preempted")
assert(r[2] == "second", "the nested coroutine resumed correctly after preemption")
assert(r[3] == false)

-- preempted computations keep their results: two CPU-bound goroutines and
-- main interleave
local results = chan(2)
for k = 1, 2 do
  go(function()
    local s = 0
    for i = 1, 1000000 do s = s + i % 7 end
    results:send({ k, s })
  end)
end
local want = 0
for i = 1, 1000000 do want = want + i % 7 end
for _ = 1, 2 do
  local res = results:recv()
  assert(res[2] == want, "goroutine " .. res[1] .. " computed " .. res[2])
end

-- a spinner keeps being preempted after gomaxprocs shrinks, whichever P
-- it was running on
local old = runtime.gomaxprocs(2)
local spin2 = true
go(function() while spin2 do end end)
runtime.gosched()
runtime.gomaxprocs(1)
for _ = 1, 3 do time.sleep(0.005) end
spin2 = false
runtime.gomaxprocs(old)

assert(runtime.stats().preemptions > 0, "stats().preemptions counts preemptions")

print("ok")
