-- pingpong.lua: cost of one goroutine switch through unbuffered channels.
--
-- lugo:     two goroutines, ping sends i on channel a and waits for the
--           reply on channel b; pong echoes. 1M round trips (2 channel
--           hand-offs and 2 goroutine switches each).
-- baseline: a bare coroutine.resume(co, i) / coroutine.yield(v) round trip,
--           1M times, in a plain Lua state: the cheapest switch there is.
-- figure:   ns per round trip; target <= 350 ns (about 3x the bare switch).

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local N = C.size(1000000, 100000)

local function lugo_pingpong()
  local a, b, done = chan(), chan(), chan()
  go(function()
    for i = 1, N do
      a:send(i)
      local v = b:recv()
      if v ~= i then error("pingpong: got " .. tostring(v) .. " want " .. i) end
    end
    done:send(true)
  end)
  go(function()
    for _ = 1, N do b:send((a:recv())) end
  end)
  done:recv()
end

local function floor_pingpong()
  local resume, yield = coroutine.resume, coroutine.yield
  local co = coroutine.create(function(v)
    while true do v = yield(v) end
  end)
  for i = 1, N do
    local _, v = resume(co, i)
    if v ~= i then error("floor pingpong: bad echo") end
  end
end

C.info("pingpong: N=%d reps=%d", N, C.reps)
local t_floor = C.floor("baseline", floor_pingpong)
local t_lugo = C.best_time("lugo", lugo_pingpong)

C.result{ name = "pingpong", metric = "round_trip", unit = "ns",
          lugo = t_lugo / N * 1e9, baseline = t_floor and t_floor / N * 1e9,
          target = "<=350" }
