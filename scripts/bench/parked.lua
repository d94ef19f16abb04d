-- parked.lua: memory held by a goroutine parked on a channel.
--
-- lugo:     200k goroutines, each blocked in ch:recv() on one channel.
-- baseline: 200k coroutines suspended at coroutine.yield(), kept in a table
--           (the table adds about 16-20 B per coroutine to the baseline), in
--           a plain Lua state (`lugo --plain`).
-- figures:  per goroutine, after a full GC: RSS delta (/proc/self/statm)
--           and Lua heap delta (collectgarbage "count"); target <= 1.4 KB
--           (1 KB = 1024 B) for both.
--
-- RSS only grows (freed memory stays with the allocator), so each half runs
-- in a fresh process of the same binary: this script re-runs itself with
-- LUGO_BENCH_PART=lugo and =baseline (with --plain) and reads a PART line
-- from each (the command: common.lua's self_command). If that fails the
-- halves run in this process, lugo first, and the baseline's RSS figure is
-- then too low and not a plain state's.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local N = C.size(200000, 20000)

-- Park N goroutines on one channel; return a function that releases them.
local function park_lugo()
  local ch = chan()
  local ready, finished = sync.waitgroup(), sync.waitgroup()
  ready:add(N)
  finished:add(N)
  local function parked()
    ready:done()
    ch:recv()
    finished:done()
  end
  for _ = 1, N do go(parked) end
  ready:wait()
  for _ = 1, 3 do runtime.gosched() end   -- let the last ones reach recv
  local alive = runtime.numgoroutine()
  assert(alive >= N + 1, "parked: only " .. alive .. " goroutines alive")
  return function()
    ch:close()
    finished:wait()
  end
end

-- Suspend N coroutines at a yield; return a function that releases them.
local function park_floor()
  local create, resume, yield = coroutine.create, coroutine.resume, coroutine.yield
  local cos = {}
  local function parked() yield() end
  for i = 1, N do
    local co = create(parked)
    resume(co)
    cos[i] = co
  end
  return function()
    for i = 1, N do resume(cos[i]) end
    cos = nil
  end
end

-- Measure one half: KB per parked goroutine (heap, rss).
local function measure(park)
  C.full_gc()
  local h0, r0 = C.heap_kb(), C.rss_bytes()
  local release = park()
  C.full_gc()
  local h1, r1 = C.heap_kb(), C.rss_bytes()
  release()
  return (h1 - h0) / N, (r1 - r0) / 1024 / N
end

local PARTS = { lugo = park_lugo, baseline = park_floor }

-- Child mode: one half, one PART line.
local part = os.getenv("LUGO_BENCH_PART")
if part then
  local heap, rss = measure(assert(PARTS[part], "unknown LUGO_BENCH_PART"))
  io.write(string.format("PART heap=%.6f rss=%.6f\n", heap, rss))
  io.stdout:flush()
  return
end

-- Parent mode: each half in a child; the baseline's in a plain state.
local function run_child(which)
  local cmd = C.self_command(which == "baseline" and "--plain" or "")
  if cmd == nil then return nil, "no command runs this script" end
  local env = "LUGO_BENCH_PART=" .. which .. (C.quick and " LUGO_BENCH_QUICK=1" or "")
  local p, err = io.popen(env .. " " .. cmd, "r")
  if not p then return nil, err end
  local out = p:read("a")
  local ok, how, code = p:close()
  local heap, rss = out:match("PART heap=(%S+) rss=(%S+)")
  if not ok or not heap then
    return nil, string.format("child %s failed (%s %s): %s", which,
                              tostring(how), tostring(code), out)
  end
  return tonumber(heap), tonumber(rss)
end

C.info("parked: N=%d", N)
local res, separate = {}, true
for _, which in ipairs{ "lugo", "baseline" } do
  local ok, heap, rss = pcall(run_child, which)
  if not ok or heap == nil then
    C.info("separate process failed (%s); measuring in this process",
           tostring(ok and rss or heap))
    separate = false
    break
  end
  res[which] = { heap = heap, rss = rss }
end
if not separate then
  for _, which in ipairs{ "lugo", "baseline" } do
    local heap, rss = measure(PARTS[which])
    res[which] = { heap = heap, rss = rss }
  end
  C.info("in-process: the baseline RSS figure reuses memory freed by lugo's half")
end
C.info("mode: %s", separate and "one process per half" or "one process")

C.result{ name = "parked", metric = "rss_per_g", unit = "KB",
          lugo = res.lugo.rss, baseline = res.baseline.rss, target = "<=1.4" }
C.result{ name = "parked", metric = "heap_per_g", unit = "KB",
          lugo = res.lugo.heap, baseline = res.baseline.heap, target = "<=1.4" }
