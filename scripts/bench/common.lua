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
--   floor(label, f)  best_time of f in a plain Lua state (see below)
--   self_command(o)  the shell command that runs this script (options o)
--   plain            true when this process is a plain state's (a floor)
--   info(fmt, ...)   a "# ..." line: for people, ignored by run.sh
--   result{...}      the one machine-readable RESULT line per figure
--   sleepers(n, d)   the sleeper workload shared by the two sleeper scripts
--
-- The floor (baseline) of a figure is the same work in a *plain* Lua
-- state of the same binary, `lugo --plain`, with none of lugo's code: a
-- child process that runs this script again with LUGO_BENCH_FLOOR=k and
-- stops at its k-th call of floor(), which times the work, prints a FLOOR
-- line and exits. A script calls floor() before anything that needs lugo.
-- Under lugo, timing uses time.now() (monotonic wall seconds); a plain
-- state has no such clock, and its floors, one thread doing plain Lua
-- work, are timed with os.clock() (the process's CPU seconds, the same
-- figure for such work).

local C = {}

C.plain = rawget(_G, "go") == nil
local now = C.plain and os.clock or time.now

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
    local t0 = now()
    f()
    local dt = now() - t0
    C.info("%s rep %d: %.4f s", label, r, dt)
    if dt < best then best = dt end
  end
  return best
end

local function shquote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- The shell command that runs this script with the interpreter options
-- `opts` (a string) added: the interpreter is $LUGO_BENCH_BIN (set by
-- run.sh, shell-quoted) or the one in arg[-1], arg[-2], ...; nil if
-- neither is known.
function C.self_command(opts)
  local cmd = os.getenv("LUGO_BENCH_BIN")
  if cmd == nil and arg and arg[-1] then
    local lo = -1
    while arg[lo - 1] ~= nil do lo = lo - 1 end
    local words = {}
    for i = lo, -1 do words[#words + 1] = shquote(arg[i]) end
    cmd = table.concat(words, " ")
  end
  if cmd == nil then return nil end
  return cmd .. " " .. (opts or "") .. " " .. shquote(arg[0])
end

-- The k-th floor of this script: best_time of f in a plain state (the
-- child process described at the top). Its timing lines are passed on.
local floors = 0
function C.floor(label, f)
  floors = floors + 1
  -- ab.sh compares two lugo binaries: no floor needed.
  if os.getenv("LUGO_BENCH_NO_FLOOR") == "1" then return nil end
  if C.plain then
    if tonumber(os.getenv("LUGO_BENCH_FLOOR")) ~= floors then return nil end
    io.write(string.format("FLOOR %.9f\n", C.best_time(label .. " (plain state)", f)))
    io.stdout:flush()
    os.exit(0)
  end
  local cmd = assert(C.self_command("--plain"), "floor: no command runs this script")
  local env = "LUGO_BENCH_FLOOR=" .. floors .. (C.quick and " LUGO_BENCH_QUICK=1" or "")
  local p = assert(io.popen(env .. " " .. cmd, "r"))
  local out = p:read("a")
  local ok = p:close()
  for line in out:gmatch("[^\n]+") do
    if line:find("(plain state)", 1, true) then io.write(line, "\n") end
  end
  local t = out:match("FLOOR (%S+)")
  assert(ok and t, "floor: the plain-state run failed: " .. out)
  return tonumber(t)
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
