-- spawn.lua: how fast goroutines are created, run and finished.
--
-- lugo:     go() 200k goroutines that each call wg:done(); main waits on
--           the waitgroup. Timed from the first go() to wg:wait() returning.
-- baseline: coroutine.create + coroutine.resume 200k coroutines, each of
--           which runs to completion at once (no scheduler needed).
-- figure:   goroutines (coroutines) per second; target >= 1.0M/s.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local N = C.size(200000, 20000)

local function lugo_spawn()
  local wg = sync.waitgroup()
  wg:add(N)
  local function work() wg:done() end
  for _ = 1, N do go(work) end
  wg:wait()
end

local function floor_spawn()
  local create, resume = coroutine.create, coroutine.resume
  local n = 0
  local function work() n = n + 1 end
  for _ = 1, N do resume(create(work)) end
  assert(n == N)
end

C.info("spawn: N=%d reps=%d", N, C.reps)
local t_floor = C.floor("baseline", floor_spawn)
local t_lugo = C.best_time("lugo", lugo_spawn)

C.result{ name = "spawn", metric = "rate", unit = "goroutines/s",
          lugo = N / t_lugo, baseline = t_floor and N / t_floor, target = ">=1000000" }
