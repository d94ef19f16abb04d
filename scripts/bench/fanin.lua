-- fanin.lua: many producers, one consumer, one buffered channel.
--
-- lugo:     100 producer goroutines each send 10k integers on one channel
--           of capacity 128; main receives all 1M and checks the sum.
-- baseline: the same shape on floor.lua: 100 producer coroutines and one
--           consumer coroutine on a plain-Lua round-robin scheduler, with a
--           Lua table ring buffer of 128 slots (send parks when full, recv
--           parks when empty).
-- figure:   values received per second; target >= 8M/s.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")
local floor = dofile(dir .. "floor.lua")

local P = 100
local TOTAL = C.size(1000000, 100000)
local PER = TOTAL // P
local WANT = P * (PER * (PER + 1) // 2)

local function lugo_fanin()
  local ch = chan(128)
  local function producer()
    for i = 1, PER do ch:send(i) end
  end
  for _ = 1, P do go(producer) end
  local sum = 0
  for _ = 1, P * PER do sum = sum + ch:recv() end
  assert(sum == WANT, "fanin: bad sum")
end

local function floor_fanin()
  local S = floor.new()
  local q = S.queue(128)
  local function producer()
    for i = 1, PER do q:send(i) end
  end
  for _ = 1, P do S.spawn(producer) end
  local sum = 0
  S.spawn(function()
    for _ = 1, P * PER do sum = sum + q:recv() end
  end)
  S.run()
  assert(sum == WANT, "floor fanin: bad sum")
end

C.info("fanin: producers=%d total=%d reps=%d", P, P * PER, C.reps)
local t_floor = C.floor("baseline", floor_fanin)
local t_lugo = C.best_time("lugo", lugo_fanin)

C.result{ name = "fanin", metric = "rate", unit = "values/s",
          lugo = P * PER / t_lugo, baseline = t_floor and P * PER / t_floor,
          target = ">=8000000" }
