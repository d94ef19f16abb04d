-- sync_mutex.lua: sync.mutex() with :lock(), :unlock(), :trylock().

local function has(err, needle)
  return string.find(tostring(err), needle, 1, true) ~= nil
end

-- mutual exclusion, even when the holder yields inside the critical section
local mu = sync.mutex()
local counter, inside, max_inside = 0, 0, 0
local wg = sync.waitgroup()
for _ = 1, 20 do
  wg:add(1)
  go(function()
    for _ = 1, 10 do
      mu:lock()
      inside = inside + 1
      if inside > max_inside then max_inside = inside end
      local c = counter
      runtime.gosched()
      counter = c + 1
      inside = inside - 1
      mu:unlock()
    end
    wg:done()
  end)
end
wg:wait()
assert(counter == 200, "no lost update: " .. counter)
assert(max_inside == 1, "one holder at a time: " .. max_inside)

-- the same with a sleep inside the critical section
local m2 = sync.mutex()
local log = {}
local wg2 = sync.waitgroup()
for k = 1, 5 do
  wg2:add(1)
  go(function()
    m2:lock()
    log[#log + 1] = "in" .. k
    time.sleep(0.002)
    log[#log + 1] = "out" .. k
    m2:unlock()
    wg2:done()
  end)
end
wg2:wait()
assert(#log == 10)
for j = 1, 10, 2 do
  local k = log[j]:match("^in(%d+)$")
  assert(k and log[j + 1] == "out" .. k, "critical sections do not overlap")
end

-- trylock returns a boolean
local t = sync.mutex()
assert(t:trylock() == true, "trylock of an unlocked mutex")
assert(t:trylock() == false, "trylock of a locked mutex")
t:unlock()
assert(t:trylock() == true)
t:unlock()
t:lock()
assert(t:trylock() == false)
t:unlock()

-- unlock of an unlocked mutex raises an error
local u = sync.mutex()
local ok, err = pcall(u.unlock, u)
assert(not ok, "unlock of an unlocked mutex fails")
assert(has(err, "unlock of unlocked mutex"), "message: " .. tostring(err))
u:lock()
u:unlock()
ok, err = pcall(function() u:unlock() end)
assert(not ok and has(err, "unlock of unlocked mutex"), tostring(err))

-- lock parks the goroutine, never the thread: main keeps working with
-- channels while a goroutine waits for the lock (also with --procs 1)
local held = sync.mutex()
held:lock()
local acquired = false
local ping = chan()
local got = chan()
go(function()
  held:lock()
  acquired = true
  got:send(true)
  held:unlock()
end)
go(function()
  for k = 1, 10 do ping:send(k) end
end)
for k = 1, 10 do assert(ping:recv() == k) end
assert(not acquired, "the goroutine waits while main holds the lock")
held:unlock()
assert(got:recv() == true and acquired)

-- a mutex may be unlocked by another goroutine than the one that locked it
local handoff = sync.mutex()
handoff:lock()
go(function() handoff:unlock() end)
handoff:lock() -- blocks until the goroutine unlocked it
handoff:unlock()

-- every waiter eventually gets the lock
local m3 = sync.mutex()
m3:lock()
local order = chan(10)
for k = 1, 10 do
  go(function()
    m3:lock()
    order:send(k)
    m3:unlock()
  end)
end
time.sleep(0.005)
m3:unlock()
local seen = {}
for _ = 1, 10 do seen[order:recv()] = true end
for k = 1, 10 do assert(seen[k]) end
assert(m3:trylock() == true)
m3:unlock()

-- a goroutine holding a lock across a channel park
local m4 = sync.mutex()
local step = chan()
go(function()
  m4:lock()
  step:send("locked")
  step:recv() -- parks while holding m4
  m4:unlock()
  step:send("unlocked")
end)
assert(step:recv() == "locked")
assert(m4:trylock() == false)
step:send("go on")
assert(step:recv() == "unlocked")
assert(m4:trylock() == true)
m4:unlock()

print("ok")
