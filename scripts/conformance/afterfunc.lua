-- afterfunc.lua: time.afterfunc(d, f) runs f in a new goroutine after d and
-- returns a timer whose stop() prevents it.

local SLACK = 0.001

-- f runs after d, in a goroutine other than main
local res = chan()
local t0 = time.now()
local tm = time.afterfunc(0.02, function()
  res:send({ runtime.id(), time.now() })
end)
assert(tm ~= nil, "afterfunc returns a timer")
local r = res:recv() -- f can block: it is a goroutine
assert(r[1] ~= 1, "f does not run in the main goroutine")
assert(r[2] - t0 >= 0.02 - SLACK, "f ran after " .. (r[2] - t0))
assert(tm:stop() == false, "stop after f ran: false")

-- stop before it fires: true, and f never runs
local ran = false
local st = time.afterfunc(0.02, function() ran = true end)
assert(st:stop() == true)
assert(st:stop() == false)
time.sleep(0.05)
assert(not ran, "a stopped afterfunc never runs")

-- f may park (sleep, channels) like any goroutine
local steps = chan(3)
time.afterfunc(0, function()
  steps:send(1)
  time.sleep(0.005)
  steps:send(2)
end)
assert(steps:recv() == 1 and steps:recv() == 2)

-- each afterfunc gets its own goroutine (all kept alive until counted, so
-- that no id can be reused)
local n = 50
local wg = sync.waitgroup()
wg:add(n)
local release = chan()
local ids = {}
for k = 1, n do
  time.afterfunc((k % 5) * 0.002, function()
    ids[runtime.id()] = true
    wg:done()
    release:recv()
  end)
end
wg:wait()
local distinct = 0
for _ in pairs(ids) do distinct = distinct + 1 end
assert(distinct == n, "each afterfunc ran in its own goroutine (" .. distinct .. ")")
release:close()

-- reset re-arms it: f runs (once) after the new delay
local count = 0
local once = chan(2)
local rt = time.afterfunc(10, function()
  count = count + 1
  once:send(count)
end)
rt:reset(0.01)
assert(once:recv() == 1)
time.sleep(0.03)
assert(count == 1)

-- an error in f that f catches itself does not matter to anyone
local caught = chan()
time.afterfunc(0, function()
  caught:send((pcall(error, "x")))
end)
assert(caught:recv() == false)

-- afterfunc while main blocks: main is woken by f
local wake = chan()
time.afterfunc(0.005, function() wake:close() end)
local v, ok = wake:recv()
assert(v == nil and ok == false)

print("ok")
