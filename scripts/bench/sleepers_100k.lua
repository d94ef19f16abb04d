-- sleepers_100k.lua: timer throughput with many sleeping goroutines.
--
-- lugo:     100k goroutines, each time.sleep(d) for a random d in 0..100 ms
--           (seed 42); main waits on a waitgroup.
-- baseline: none (plain Lua has no timers): baseline=na.
-- figures:  wall time (best run) from the first go() until all have woken (target
--           <= 0.3 s), and p99 lateness = wake time - requested deadline
--           (target <= 40 ms).

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local N = C.size(100000, 10000)

C.info("sleepers: N=%d max sleep 100 ms, best of %d runs", N, C.reps)
-- Best of the runs (as the other workloads): the first run of a process
-- also pays for the fresh memory of 100k goroutines (page faults).
local wall, s = math.huge, nil
for r = 1, C.reps do
  C.full_gc()
  local w, late = C.sleepers(N, 0.100)
  C.info("run %d: wall %.3f s", r, w)
  if w < wall then wall, s = w, C.summary(late) end
end
C.info("lateness ms: min %.3f mean %.3f p50 %.3f p99 %.3f max %.3f",
       s.min, s.mean, s.p50, s.p99, s.max)
if s.min < 0 then C.info("WARNING: a sleeper woke %.3f ms early", -s.min) end

C.result{ name = "sleepers100k", metric = "wall", unit = "s",
          lugo = wall, target = "<=0.3" }
C.result{ name = "sleepers100k", metric = "p99_late", unit = "ms",
          lugo = s.p99, target = "<=40" }
