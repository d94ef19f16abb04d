-- time_timer.lua: time.timer(d) with field c, :stop() and :reset(d).

local SLACK = 0.001

local function is_empty(c)
  return chan.select({ "recv", c }, { "default" }) == 2
end

-- a timer fires once after d, sending the time on c
local t0 = time.now()
local t = time.timer(0.02)
assert(type(t) == "table" or type(t) == "userdata")
assert(t.c ~= nil, "a timer has a field c")
local v, ok = t.c:recv()
local e = time.now() - t0
assert(ok == true)
assert(type(v) == "number", "the timer sends the time, got " .. type(v))
assert(e >= 0.02 - SLACK, "timer fired after " .. e)
assert(e < 1.02)
time.sleep(0.03)
assert(is_empty(t.c), "a timer fires only once")
assert(t:stop() == false, "stop after the timer fired: false")

-- stop before it fires: true, and it never fires
local s = time.timer(0.02)
assert(s:stop() == true, "stop of a pending timer: true")
assert(s:stop() == false, "second stop: false")
time.sleep(0.05)
assert(is_empty(s.c), "a stopped timer never fires")

-- reset re-arms a stopped timer
t0 = time.now()
s:reset(0.01)
s.c:recv()
assert(time.now() - t0 >= 0.01 - SLACK)

-- reset re-arms a timer that fired (and was received)
t0 = time.now()
s:reset(0.01)
s.c:recv()
assert(time.now() - t0 >= 0.01 - SLACK)

-- reset changes the deadline of a pending timer: earlier...
local long = time.timer(10)
long:reset(0.01)
t0 = time.now()
long.c:recv()
e = time.now() - t0
assert(e < 5, "reset moved the 10 s deadline to 10 ms (took " .. e .. ")")
-- ...and later
local later = time.timer(0.1)
t0 = time.now()
later:reset(0.2)
later.c:recv()
assert(time.now() - t0 >= 0.2 - SLACK, "reset moved the deadline later")

-- timer(0) fires at once (soon)
local z = time.timer(0)
z.c:recv()

-- a timer's channel in select, as a timeout
local never = chan()
local tm = time.timer(0.01)
local i = chan.select({ "recv", never }, { "recv", tm.c })
assert(i == 2)

-- a 0 s timer fires before a 0.3 s one
local slow, fast = time.timer(0.3), time.timer(0)
i = chan.select({ "recv", slow.c }, { "recv", fast.c })
assert(i == 2, "the earlier timer fires first")
assert(slow:stop() == true)

-- many timers, all fire
local n = 200
local timers = {}
for k = 1, n do timers[k] = time.timer((k % 20) * 0.002) end
for k = 1, n do
  local tv, tok = timers[k].c:recv()
  assert(tok and type(tv) == "number")
end

-- stop of one timer does not disturb another with the same deadline
local keep, drop = time.timer(0.02), time.timer(0.02)
assert(drop:stop() == true)
keep.c:recv()
time.sleep(0.01)
assert(is_empty(drop.c))

-- a goroutine blocked on a timer's channel wakes when it fires
local woke = chan()
local tg = time.timer(0.01)
go(function()
  tg.c:recv()
  woke:send(true)
end)
assert(woke:recv() == true)

print("ok")
