-- sleepers_1k.lua: timer precision with a modest number of sleepers.
--
-- lugo:     1k goroutines, each time.sleep(d) for a random d in 0..100 ms
--           (seed 42); main waits on a waitgroup.
-- baseline: none (plain Lua has no timers): baseline=na.
-- figures:  mean lateness (target <= 0.1 ms) and p99 lateness (target
--           <= 0.3 ms), lateness = wake time - requested deadline.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local N = 1000   -- already small: the same N in quick mode

time.sleep(0.01)   -- warm-up: let the timer machinery start before measuring
C.full_gc()
C.info("sleepers: N=%d max sleep 100 ms", N)
local wall, late = C.sleepers(N, 0.100)
local s = C.summary(late)
C.info("wall %.3f s; lateness ms: min %.3f mean %.3f p50 %.3f p99 %.3f max %.3f",
       wall, s.min, s.mean, s.p50, s.p99, s.max)
if s.min < 0 then C.info("WARNING: a sleeper woke %.3f ms early", -s.min) end

C.result{ name = "sleepers1k", metric = "mean_late", unit = "ms",
          lugo = s.mean, target = "<=0.1" }
C.result{ name = "sleepers1k", metric = "p99_late", unit = "ms",
          lugo = s.p99, target = "<=0.3" }
