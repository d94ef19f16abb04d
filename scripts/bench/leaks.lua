-- leaks.lua: what one leak check costs, and the pause it causes.
--
-- lugo:     10 actors with 10k parked goroutines each (100k): half are
--           leaked (each blocked sending on a channel nothing else holds),
--           half are not (their channel is in a global table); each
--           actor's main goroutine waits on a channel main holds. In one
--           actor a goroutine keeps running (a loop of runtime.gosched())
--           and records the longest gap between two of its turns.
--           main times runtime.leaks() (it must return exactly the 50k
--           leaked ones, each described: stack, creator, wait object).
-- baseline: one full collection of a plain Lua state holding 100k
--           suspended coroutines (what any reachability pass over that
--           many parked threads costs at least).
-- figures:  the check's time (ms), its cost per parked goroutine (ns),
--           the longest piece of work the check ran on an actor's M (the
--           longest its goroutines waited for it: runtime.stats()'s
--           leak_pause_last; target <= 10 ms), and the longest gap the
--           running goroutine saw between two turns (the same pause, plus
--           its actor's wait for an M while 11 actors share 2 cores);
--           each the best of the repetitions (the first check of a
--           process pays for first touching its memory: see the info
--           lines).

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local ACTORS = C.size(10, 2)
local PER = C.size(10000, 2000)
local N = ACTORS * PER

local cos
local function floor()
  if not cos then
    cos = {}
    for i = 1, N do
      cos[i] = coroutine.create(function() coroutine.yield() end)
      coroutine.resume(cos[i])
    end
  end
  collectgarbage("collect")
end

if C.plain then
  floor()
  C.floor("collect", floor)
end

-- One actor's load. No upvalues: actors take functions as bytecode.
local function load(per, ready, stop, gaps, halt)
  kept = {}
  for i = 1, per do
    local c = chan()
    if i % 2 == 0 then kept[#kept + 1] = c end
    go(function() c:send(i) end)
  end
  if gaps then
    -- The goroutine that keeps running: its longest gap between turns.
    local running = true
    go(function()
      local last, worst = time.now(), 0
      while running do
        runtime.gosched()
        local t = time.now()
        if t - last > worst then worst = t - last end
        last = t
      end
      gaps:send(worst)
    end)
    go(function() halt:recv(); running = false end)
  end
  for _ = 1, 3 do runtime.gosched() end
  ready:send(true)
  stop:recv()
end

local function round()
  local ready, gaps, halt = chan(ACTORS), chan(1), chan(1)
  local stops, hs = {}, {}
  for a = 1, ACTORS do
    stops[a] = chan(2)
    hs[a] = actor.spawn(load, PER, ready, stops[a], a == 1 and gaps or nil, halt)
  end
  for _ = 1, ACTORS do ready:recv() end
  C.full_gc()
  local t0 = time.now()
  local leaks = runtime.leaks()
  local took = time.now() - t0
  local step = runtime.stats().leak_pause_last
  assert(#leaks == N // 2, "leaks: " .. #leaks .. ", want " .. N // 2)
  halt:send(true) -- ends the running goroutine: its gap comes back
  local worst = gaps:recv()
  for a = 1, ACTORS do
    stops[a]:send(true)
    hs[a]:wait()
  end
  return took, step, worst
end

-- The first check of a process also pays for first touching its memory
-- (page faults: on this machine transparent huge pages, 5 to 30 ms at
-- once): reported apart; the figures are the best of the repetitions.
local best, step, gap = math.huge, math.huge, math.huge
for r = 1, C.reps do
  local took, s, worst = round()
  C.info("rep %d: check %.1f ms, longest step %.2f ms, longest gap %.2f ms%s",
         r, took * 1000, s * 1000, worst * 1000, r == 1 and " (the process's first)" or "")
  best = math.min(best, took)
  step = math.min(step, s)
  gap = math.min(gap, worst)
end

local base = C.floor("collect", floor)
C.result{ name = "leaks", metric = "check", unit = "ms", lugo = best * 1000,
          baseline = base and base * 1000, target = "na" }
C.result{ name = "leaks", metric = "per_g", unit = "ns", lugo = best / N * 1e9,
          baseline = base and base / N * 1e9, target = "na" }
C.result{ name = "leaks", metric = "pause", unit = "ms", lugo = step * 1000,
          target = "<=10" }
C.result{ name = "leaks", metric = "gap", unit = "ms", lugo = gap * 1000,
          target = "na" }
