-- sync_once.lua: sync.once() with :call(f): f runs once only.

-- one call among many goroutines
local once = sync.once()
local calls = 0
local wg = sync.waitgroup()
for _ = 1, 10 do
  wg:add(1)
  go(function()
    once:call(function() calls = calls + 1 end)
    wg:done()
  end)
end
wg:wait()
assert(calls == 1, "f ran " .. calls .. " times")
once:call(function() calls = calls + 100 end)
assert(calls == 1, "a later call with another function does nothing")

-- from main, repeatedly
local o2 = sync.once()
local n = 0
for _ = 1, 5 do o2:call(function() n = n + 1 end) end
assert(n == 1)

-- separate once objects are independent
local oa, ob = sync.once(), sync.once()
local a, b = 0, 0
oa:call(function() a = a + 1 end)
ob:call(function() b = b + 1 end)
oa:call(function() a = a + 1 end)
assert(a == 1 and b == 1)

-- no call returns before the one running f has returned, even when f parks
local o3 = sync.once()
local finished = false
local results = chan(5)
for _ = 1, 5 do
  go(function()
    o3:call(function()
      time.sleep(0.03)
      finished = true
    end)
    results:send(finished)
  end)
end
for _ = 1, 5 do
  assert(results:recv() == true, "call returned before f finished")
end

-- f may use channels
local o4 = sync.once()
local c = chan()
go(function() c:send("inside once") end)
local got
o4:call(function() got = c:recv() end)
assert(got == "inside once")

print("ok")
