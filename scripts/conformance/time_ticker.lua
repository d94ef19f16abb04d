-- time_ticker.lua: time.ticker(d) with field c and :stop(); ticks are
-- dropped for slow receivers, as in Go.

local SLACK = 0.001

local function drain(c)
  local n = 0
  while chan.select({ "recv", c }, { "default" }) == 1 do n = n + 1 end
  return n
end

-- ticks come every d: 5 ticks take at least 5 d
local t0 = time.now()
local tk = time.ticker(0.01)
assert(tk.c ~= nil, "a ticker has a field c")
local prev = -math.huge
for _ = 1, 5 do
  local v, ok = tk.c:recv()
  assert(ok == true and type(v) == "number", "a tick carries the time")
  assert(v >= prev, "tick times do not go backwards")
  prev = v
end
local e = time.now() - t0
assert(e >= 0.05 - SLACK, "5 ticks of 10 ms took only " .. e)
assert(e < 2, "5 ticks of 10 ms took " .. e)

-- a slow receiver: ticks are dropped, not queued
time.sleep(0.15) -- about 15 ticks
assert(tk.c:len() <= 1, "ticks do not queue up: " .. tk.c:len() .. " buffered")
local pending = drain(tk.c)
assert(pending <= 2, "a slow receiver finds at most one pending tick (plus one "
  .. "racing the drain), found " .. pending)
-- and it keeps ticking afterwards
tk.c:recv()

-- stop: no tick after the stop (one may have been pending already)
tk:stop()
time.sleep(0.03)
assert(drain(tk.c) <= 1)
time.sleep(0.05)
assert(drain(tk.c) == 0, "a stopped ticker does not tick")

-- stop before the first tick
local quiet = time.ticker(0.02)
quiet:stop()
time.sleep(0.05)
assert(drain(quiet.c) == 0)

-- a ticker serving a goroutine loop, stopped by main
local ticks = chan(100)
local worker = time.ticker(0.005)
local quit = chan()
local finished = chan()
go(function()
  local n = 0
  while true do
    local i = chan.select({ "recv", worker.c }, { "recv", quit })
    if i == 2 then break end
    n = n + 1
    ticks:send(n)
  end
  finished:send(n)
end)
for k = 1, 3 do assert(ticks:recv() == k) end
worker:stop()
quit:close()
assert(finished:recv() >= 3)

-- several tickers at once, each ticking on its own
local a, b = time.ticker(0.004), time.ticker(0.006)
local na, nb = 0, 0
local deadline = time.now() + 5
while na < 3 or nb < 3 do
  assert(time.now() < deadline, "both tickers tick")
  local i = chan.select({ "recv", a.c }, { "recv", b.c })
  if i == 1 then na = na + 1 else nb = nb + 1 end
end
a:stop()
b:stop()

print("ok")
