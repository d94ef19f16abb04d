-- time_after.lua: time.after(d) is a channel that receives the time once.

local SLACK = 0.001

local t0 = time.now()
local c = time.after(0.02)
local v, ok = c:recv()
local e = time.now() - t0
assert(ok == true and type(v) == "number", "after sends the time")
assert(e >= 0.02 - SLACK, "after(0.02) fired after " .. e)
assert(e < 1.02)

-- only once
time.sleep(0.03)
assert(chan.select({ "recv", c }, { "default" }) == 2, "time.after sends only once")

-- after(0) fires (soon)
time.after(0):recv()

-- as a timeout in select: the operation that is ready wins, the timeout
-- wins when nothing else is ready
local ready = chan(1)
ready:send("now")
local i, rv = chan.select({ "recv", ready }, { "recv", time.after(1) })
assert(i == 1 and rv == "now")
i = chan.select({ "recv", chan() }, { "recv", time.after(0.01) })
assert(i == 2)

-- the shorter of two afters fires first
i = chan.select({ "recv", time.after(0.3) }, { "recv", time.after(0) })
assert(i == 2)

-- many afters at once, each fires
local n = 100
local afters = {}
for k = 1, n do afters[k] = time.after((k % 10) * 0.003) end
for k = 1, n do
  local av, aok = afters[k]:recv()
  assert(aok and type(av) == "number")
end

-- a timeout loop: a worker that produces slowly, a consumer with a deadline
local slow = chan()
go(function()
  for k = 1, 3 do
    time.sleep(0.005)
    slow:send(k)
  end
end)
local got = {}
local timeout = time.after(2)
while #got < 3 do
  local k, val = chan.select({ "recv", slow }, { "recv", timeout })
  assert(k == 1, "the worker beats a 2 s timeout")
  got[#got + 1] = val
end
assert(got[1] == 1 and got[2] == 2 and got[3] == 3)

-- after's value is received by a goroutine
local res = chan()
go(function()
  local av = time.after(0.005):recv()
  res:send(av)
end)
assert(type(res:recv()) == "number")

print("ok")
