-- Wait groups and mutexes cross actors by reference: every actor that
-- receives one shares it (their state lives in Rust). Objects that cannot
-- cross are refused with their type's name.

local wg, mu = sync.waitgroup(), sync.mutex()
local total = chan(1)
total:send(0)
local n = 8
wg:add(n)
for i = 1, n do
  actor.spawn(function(wg, mu, total, i)
    -- The mutex guards a read-modify-write of the shared channel's value.
    mu:lock()
    local t = total:recv()
    time.sleep(0.001)
    total:send(t + i)
    mu:unlock()
    wg:done()
  end, wg, mu, total, i)
end
wg:wait()
assert(total:recv() == n * (n + 1) / 2)

-- Sent on a channel: the same wait group.
local ch = chan(1)
local h = actor.spawn(function(ch)
  local wg2 = ch:recv()
  wg2:done()
end, ch)
local wg2 = sync.waitgroup()
wg2:add(1)
ch:send(wg2)
wg2:wait()
assert(h:wait())

-- A mutex locked in one actor is unlocked by another (Go allows it).
local m2 = sync.mutex()
m2:lock()
assert(actor.spawn(function(m) m:unlock() end, m2):wait())
m2:lock()
m2:unlock()

-- Refusals name what cannot cross.
local function refused(v, want)
  local ok, err = pcall(actor.spawn, function() end, v)
  assert(not ok and err:find(want, 1, true), err)
end
local t = time.ticker(10)
refused({ 1, 2, t }, "cannot send a ticker at arg1[3]")
t:stop()
local tm = time.timer(10)
refused(tm, "cannot send a timer at arg1")
tm:stop()
refused(io.stdout, "cannot send a FILE* at arg1")
refused({ f = print }, "cannot send a function at arg1.f")
print("ok")
