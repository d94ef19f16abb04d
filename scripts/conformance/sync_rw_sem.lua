-- sync.rwmutex: readers share it, a writer holds it alone, a waiting
-- writer keeps new readers out; sync.semaphore(n): weighted, served in
-- order. Both park only the caller, cross actors by reference, and refuse
-- misuse with an error naming the call.

local fails = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua").fails

-- Readers share; a writer waits for them.
local rw = sync.rwmutex()
rw:rlock()
rw:rlock()
assert(rw:tryrlock() == true)
assert(rw:trylock() == false)
local order = chan(10)
go(function() rw:lock() order:send("writer") rw:unlock() end)
time.sleep(0.01)
-- A writer waits: a new reader waits behind it.
assert(rw:tryrlock() == false, "a waiting writer keeps new readers out")
go(function() rw:rlock() order:send("late reader") rw:runlock() end)
time.sleep(0.01)
rw:runlock() rw:runlock() rw:runlock()
assert(order:recv() == "writer")
assert(order:recv() == "late reader")

-- A writer excludes everyone; its unlock lets waiting readers in first.
rw:lock()
local readers = chan(3)
for i = 1, 3 do go(function() rw:rlock() readers:send(i) end) end
time.sleep(0.01)
assert(readers:len() == 0)
rw:unlock()
for _ = 1, 3 do readers:recv() end
for _ = 1, 3 do rw:runlock() end
assert(rw:trylock() == true)
rw:unlock()

-- Many readers at once, one writer counting: no update lost.
local count = 0
local wg = sync.waitgroup()
wg:add(20)
for i = 1, 20 do
  go(function()
    if i % 4 == 0 then
      rw:lock() local c = count time.sleep(0.001) count = c + 1 rw:unlock()
    else
      rw:rlock() local c = count time.sleep(0.001) assert(count == c) rw:runlock()
    end
    wg:done()
  end)
end
wg:wait()
assert(count == 5)

-- Semaphore: units, order, try.
local sem = sync.semaphore(3)
sem:acquire(2)
assert(sem:tryacquire(2) == false and sem:tryacquire() == true)
local got = chan(3)
go(function() sem:acquire(3) got:send("three") end)
time.sleep(0.01)
go(function() sem:acquire(1) got:send("one") end)
time.sleep(0.01)
assert(got:len() == 0, "the one waits behind the three (in order)")
sem:release(3)
assert(got:recv() == "three")
sem:release(3)
assert(got:recv() == "one")
sem:release(1)
assert(sem:tryacquire(3))
sem:release(3)

-- Across actors: the same semaphore bounds two actors' work.
local shared = sync.semaphore(1)
local inside, most = chan(1), chan(1)
inside:send(0) most:send(0)
local hs = {}
for i = 1, 2 do
  hs[i] = actor.spawn(function(s, inside, most)
    for _ = 1, 5 do
      s:acquire()
      local n = inside:recv() + 1
      local m = most:recv()
      most:send(n > m and n or m)
      inside:send(n)
      time.sleep(0.001)
      inside:send(inside:recv() - 1)
      s:release()
    end
  end, shared, inside, most)
end
for i = 1, 2 do assert(hs[i]:wait()) end
assert(most:recv() == 1, "never two inside at once")

-- Misuse.
fails(function() sync.rwmutex():runlock() end, "sync: runlock of unlocked rwmutex")
fails(function() sync.rwmutex():unlock() end, "sync: unlock of unlocked rwmutex")
fails(function() sync.semaphore(0) end, "sync.semaphore: size must be a positive integer, got 0")
fails(function() sync.semaphore("3") end, "sync.semaphore: size must be a positive integer, got string")
fails(function() sync.semaphore(2):acquire(3) end, "semaphore:acquire: count must be an integer from 1 to 2")
fails(function() sync.semaphore(2):release() end, "sync: semaphore released more than held")
fails(function() rw.rlock(sem) end, "rwmutex:rlock: rwmutex expected, got userdata")
print("ok")
