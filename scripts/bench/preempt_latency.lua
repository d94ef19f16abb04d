-- preempt_latency.lua: how late a sleeper wakes while a goroutine spins.
--
-- lugo:     one P (gomaxprocs(1)); one goroutine spins in a loop that never
--           parks; main does 100 sleeps of 1 ms. Main runs again only when
--           sysmon preempts the spinner (its 10 ms slice).
-- baseline: none meaningful (plain Lua cannot preempt): baseline=na.
-- figures:  p99 lateness (wake time - deadline) in ms, target <= 11 ms (Go
--           1.19 measured 19.6 ms here); preemptions counted by runtime.stats.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local N = C.size(100, 30)
local old = runtime.gomaxprocs(1)
local spinning = true
local before = runtime.stats().preemptions
go(function()
  local n = 0
  while spinning do n = n + 1 end
end)
local late = {}
for i = 1, N do
  local deadline = time.now() + 0.001
  time.sleep(0.001)
  late[i] = (time.now() - deadline) * 1000
end
spinning = false
runtime.gomaxprocs(old)
table.sort(late)
local s = C.summary(late)
C.info("lateness ms: min %.3f mean %.3f p50 %.3f p99 %.3f max %.3f; preemptions %d",
       s.min, s.mean, s.p50, s.p99, s.max, runtime.stats().preemptions - before)
C.result{ name = "preempt", metric = "p99_late", unit = "ms",
          lugo = s.p99, target = "<=11" }
