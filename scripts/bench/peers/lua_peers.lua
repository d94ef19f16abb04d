-- lua_peers.lua: lugo's benchmark workloads on sched.lua, in plain Lua, run
-- by Debian's lua5.4 and luajit (Lua 5.1 code: no //, no goto, no integer
-- subtype needed). One workload per run:
--
--   lua5.4 lua_peers.lua pingpong|spawn|parked|fanin|sleepers100k|sleepers1k
--
-- The sizes and shapes are those of the lugo scripts (pingpong.lua, ...),
-- with go/chan/sync.waitgroup/time.sleep replaced by sched.lua's. Reads
-- LUGO_BENCH_QUICK=1 and LUGO_BENCH_REPS as they do. Prints `# ...` lines
-- and `PEER name=.. metric=.. value=.. unit=..` lines (units as lugo's).
--
-- Timing: os.clock() (process CPU seconds). The process is one thread that
-- never blocks (sched.lua busy-waits for timers), so its CPU time is its
-- wall time unless the OS takes the CPU away; the sleepers' lateness is
-- therefore measured on that clock too (a descheduled process would look
-- early rather than late).

local dir = (arg and arg[0] or ""):match("^(.*/)") or "./"
local S = dofile(dir .. "sched.lua")
local now = os.clock

local quick = os.getenv("LUGO_BENCH_QUICK") == "1"
local function size(full, q) if quick then return q end return full end
local reps = tonumber(os.getenv("LUGO_BENCH_REPS") or "") or (quick and 1 or 3)

local function info(fmt, ...) io.write("# ", string.format(fmt, ...), "\n") io.stdout:flush() end
local function num(v)
  if v ~= v or v == math.huge or v == -math.huge then return "na" end
  if math.abs(v) >= 1e4 then return string.format("%.0f", v) end
  return string.format("%.4g", v)
end
local function peer(name, metric, v, unit)
  io.write(string.format("PEER name=%s metric=%s value=%s unit=%s\n", name, metric, num(v), unit))
  io.stdout:flush()
end
local function full_gc() collectgarbage("collect") collectgarbage("collect") end
local function rss_bytes()
  local f = assert(io.open("/proc/self/statm", "r"))
  local line = f:read("*l")
  f:close()
  return tonumber(line:match("^%S+%s+(%d+)")) * 4096
end

-- Run f as the main coroutine of a fresh scheduler run, reps times after a
-- full GC each; the best time in seconds.
local function best_time(label, f)
  local best = math.huge
  for r = 1, reps do
    full_gc()
    local t0 = now()
    S.run(f)
    local dt = now() - t0
    info("%s rep %d: %.4f s", label, r, dt)
    if dt < best then best = dt end
  end
  return best
end

local function summary(s)
  local n, sum = #s, 0
  for i = 1, n do sum = sum + s[i] end
  local function pct(p) return s[math.max(1, math.ceil(p * n))] end
  return { mean = sum / n, p50 = pct(0.50), p99 = pct(0.99), min = s[1], max = s[n] }
end

local W = {}

function W.pingpong()
  local N = size(1000000, 100000)
  info("pingpong: N=%d reps=%d", N, reps)
  local t = best_time("sched", function()
    local a, b, done = S.chan(), S.chan(), S.chan()
    S.go(function()
      for i = 1, N do
        a:send(i)
        local v = b:recv()
        if v ~= i then error("pingpong: got " .. tostring(v) .. " want " .. i) end
      end
      done:send(true)
    end)
    S.go(function()
      for _ = 1, N do b:send((a:recv())) end
    end)
    done:recv()
  end)
  peer("pingpong", "round_trip", t / N * 1e9, "ns")
end

function W.spawn()
  local N = size(200000, 20000)
  info("spawn: N=%d reps=%d", N, reps)
  local t = best_time("sched", function()
    local wg = S.waitgroup()
    wg:add(N)
    local function work() wg:done() end
    for _ = 1, N do S.go(work) end
    wg:wait()
  end)
  peer("spawn", "rate", N / t, "goroutines/s")
end

-- As parked.lua's lugo half, in a fresh process (this one): heap
-- (collectgarbage "count") and RSS (/proc/self/statm) deltas after a full
-- GC, per parked coroutine, KB.
function W.parked()
  local N = size(200000, 20000)
  info("parked: N=%d", N)
  local heap, rss
  S.run(function()
    full_gc()
    local h0, r0 = collectgarbage("count"), rss_bytes()
    local ch = S.chan()
    local ready, finished = S.waitgroup(), S.waitgroup()
    ready:add(N)
    finished:add(N)
    local function parked()
      ready:done()
      ch:recv()
      finished:done()
    end
    for _ = 1, N do S.go(parked) end
    ready:wait()
    full_gc()
    heap = (collectgarbage("count") - h0) / N
    rss = (rss_bytes() - r0) / 1024 / N
    ch:close()
    finished:wait()
  end)
  peer("parked", "rss_per_g", rss, "KB")
  peer("parked", "heap_per_g", heap, "KB")
end

function W.fanin()
  local P = 100
  local TOTAL = size(1000000, 100000)
  local PER = math.floor(TOTAL / P)
  local WANT = P * (PER * (PER + 1) / 2)
  info("fanin: producers=%d total=%d reps=%d", P, P * PER, reps)
  local t = best_time("sched", function()
    local ch = S.chan(128)
    local function producer()
      for i = 1, PER do ch:send(i) end
    end
    for _ = 1, P do S.go(producer) end
    local sum = 0
    for _ = 1, P * PER do sum = sum + ch:recv() end
    assert(sum == WANT, "fanin: bad sum")
  end)
  peer("fanin", "rate", P * PER / t, "values/s")
end

-- common.lua's sleepers on sched.lua: n coroutines, each sleeping a random
-- 0..maxsleep s (seed 42); lateness = wake time - (now before sleep + d).
local function sleepers(n, maxsleep)
  math.randomseed(42)
  local late, wall = {}, nil
  for i = 1, n do late[i] = 0 end
  S.run(function()
    local wg = S.waitgroup()
    wg:add(n)
    local function sleeper(i, d)
      local deadline = now() + d
      S.sleep(d)
      late[i] = (now() - deadline) * 1000
      wg:done()
    end
    local t0 = now()
    for i = 1, n do S.go(sleeper, i, math.random() * maxsleep) end
    wg:wait()
    wall = now() - t0
  end)
  table.sort(late)
  return wall, late
end

local function sleep_report(s)
  info("lateness ms: min %.3f mean %.3f p50 %.3f p99 %.3f max %.3f",
       s.min, s.mean, s.p50, s.p99, s.max)
  if s.min < 0 then info("WARNING: a sleeper woke %.3f ms early", -s.min) end
end

function W.sleepers100k()
  local N = size(100000, 10000)
  info("sleepers: N=%d max sleep 100 ms, best of %d runs (os.clock, busy-wait)", N, reps)
  local wall, s = math.huge, nil
  for r = 1, reps do
    full_gc()
    local w, late = sleepers(N, 0.100)
    info("run %d: wall %.3f s", r, w)
    if w < wall then wall, s = w, summary(late) end
  end
  sleep_report(s)
  peer("sleepers100k", "wall", wall, "s")
  peer("sleepers100k", "p99_late", s.p99, "ms")
end

function W.sleepers1k()
  local N = 1000
  S.run(function() S.sleep(0.01) end)   -- warm-up, as sleepers_1k.lua
  full_gc()
  info("sleepers: N=%d max sleep 100 ms (os.clock, busy-wait)", N)
  local wall, late = sleepers(N, 0.100)
  local s = summary(late)
  info("wall %.3f s", wall)
  sleep_report(s)
  peer("sleepers1k", "mean_late", s.mean, "ms")
  peer("sleepers1k", "p99_late", s.p99, "ms")
end

local w = arg and arg[1]
if not W[w or ""] then
  io.stderr:write("usage: lua_peers.lua pingpong|spawn|parked|fanin|sleepers100k|sleepers1k\n")
  os.exit(2)
end
info("%s", _VERSION .. (jit and (" " .. jit.version) or ""))
W[w]()
