-- common.lua: helpers shared by the lugo benchmark scripts.
--
-- Each bench script loads this file with dofile (see the line at the top of
-- every script) and gets back a table with:
--   quick            true under --quick / LUGO_BENCH_QUICK=1 (smaller N)
--   size(full, q)    full N, or q in quick mode
--   reps             how many times a timed workload is repeated (best kept)
--   heap_kb()        Lua heap of this actor, KB (collectgarbage "count")
--   rss_bytes()      resident set size of the process (/proc/self/statm)
--   full_gc()        two full collections (finalizers, then their garbage)
--   best_time(f)     run f `reps` times after a full GC each, return min s
--   info(fmt, ...)   a "# ..." line: for people, ignored by run.sh
--   result{...}      the one machine-readable RESULT line per figure
--   sleepers(n, d)   the sleeper workload shared by the two sleeper scripts
--
-- All timing uses time.now() (monotonic seconds), lugo's clock, for both
-- the lugo workload and its plain-coroutine baseline.

local C = {}

-- Quick mode: --quick on the script's command line or LUGO_BENCH_QUICK=1 in
-- the environment (run.sh uses the environment so that lugo's own option
-- parser never sees the flag).
C.quick = os.getenv("LUGO_BENCH_QUICK") == "1"
for _, a in ipairs(arg or {}) do
  if a == "--quick" then C.quick = true end
end

function C.size(full, quick)
  if C.quick then return quick end
  return full
end

C.reps = tonumber(os.getenv("LUGO_BENCH_REPS") or "") or (C.quick and 1 or 3)

function C.heap_kb()
  return collectgarbage("count")
end

-- RSS: second field of /proc/self/statm is resident pages.
local PAGE = 4096
function C.rss_bytes()
  local f = assert(io.open("/proc/self/statm", "r"))
  local line = f:read("l")
  f:close()
  local resident = assert(line:match("^%S+%s+(%d+)"), "bad statm: " .. line)
  return tonumber(resident) * PAGE
end

function C.full_gc()
  collectgarbage("collect")
  collectgarbage("collect")
end

function C.info(fmt, ...)
  io.write("# ", string.format(fmt, ...), "\n")
  io.stdout:flush()
end

-- Run f C.reps times, each after a full collection; return the best
-- (smallest) wall time in seconds. The first repetition doubles as warm-up.
function C.best_time(label, f)
  local best = math.huge
  for r = 1, C.reps do
    C.full_gc()
    local t0 = time.now()
    f()
    local dt = time.now() - t0
    C.info("%s rep %d: %.4f s", label, r, dt)
    if dt < best then best = dt end
  end
  return best
end

local function num(v)
  if v == nil then return "na" end
  if v ~= v or v == math.huge or v == -math.huge then return "na" end
  if math.abs(v) >= 1e4 then return string.format("%.0f", v) end
  return string.format("%.4g", v)
end

-- One figure: name (workload), metric, lugo, baseline (nil -> na), unit, and
-- target as "<=X" or ">=X" in the unit of the figure. run.sh computes the
-- ratio and whether the target is met.
function C.result(r)
  io.write(string.format(
    "RESULT name=%s metric=%s lugo=%s baseline=%s unit=%s target=%s\n",
    r.name, r.metric, num(r.lugo), num(r.baseline), r.unit, r.target))
  io.stdout:flush()
end

-- Sleepers: n goroutines, each sleeping a uniformly random 0..maxsleep
-- seconds. Lateness of one sleeper = the time it is running again minus the
-- deadline it asked for (time.now() just before time.sleep, plus d).
-- Returns wall seconds (first go() to the last wake seen by main) and the
-- sorted lateness in milliseconds.
function C.sleepers(n, maxsleep)
  math.randomseed(42)
  local late = {}
  for i = 1, n do late[i] = 0 end   -- keep the array part dense
  local wg = sync.waitgroup()
  wg:add(n)
  local function sleeper(i, d)
    local deadline = time.now() + d
    time.sleep(d)
    late[i] = (time.now() - deadline) * 1000
    wg:done()
  end
  local t0 = time.now()
  for i = 1, n do
    go(sleeper, i, math.random() * maxsleep)
  end
  wg:wait()
  local wall = time.now() - t0
  table.sort(late)
  return wall, late
end

-- Summary of a sorted sample: mean, p50, p99, min, max.
function C.summary(sorted)
  local n, sum = #sorted, 0
  for i = 1, n do sum = sum + sorted[i] end
  local function pct(p) return sorted[math.max(1, math.ceil(p * n))] end
  return { mean = sum / n, p50 = pct(0.50), p99 = pct(0.99),
           min = sorted[1], max = sorted[n] }
end

return C
