-- leak_server.lua: a server that leaks one goroutine per request, with
-- the leaks reclaimed (LUGO_DEBUG=leakcheck=2).
--
-- lugo:     N = 1M requests, 1,000 every 10 ms at most (a server at
--           100k requests/s, not a loop that only leaks); each request's handler
--           starts a worker that computes a little and sends its result on
--           an unbuffered channel, and gives up on it at once (the classic
--           timeout: nobody will ever receive, the worker is leaked). The
--           script runs itself again with leakcheck=2 (a check every
--           50 ms that ends what it finds) and prints the process's RSS
--           after each quarter of the requests; then, for contrast, 100k
--           requests without reclaim.
-- figures:  the most goroutines alive at a quarter (bounded by what
--           leaks between two checks, not by N), RSS after 1M requests
--           beside what 1M leaked goroutines take without reclaim (the
--           per-leak RSS of the second run times 1M), and RSS after 1M
--           over RSS after 250k (flat: <= 2; the allocator keeps its peak,
--           so a burst between two checks shows). No peer reclaims a
--           goroutine.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local N = C.size(1000000, 100000)
local BATCH = 1000

if os.getenv("LEAK_SERVER_REQUESTS") then
  -- The child: serve the requests, report RSS each quarter.
  local n = tonumber(os.getenv("LEAK_SERVER_REQUESTS"))
  local function handler(i)
    local result = chan()
    go(function()
      local x = 0
      for k = 1, 20 do x = x + k * i end
      result:send(x) -- blocks forever: the handler is gone
    end)
  end
  local t0 = time.now()
  for r = 1, n // BATCH do
    local t = time.now()
    for i = 1, BATCH do handler(i) end
    -- The rest of the batch's 10 ms: the server waits for requests.
    local left = 0.01 - (time.now() - t)
    if left > 0 then time.sleep(left) else runtime.gosched() end
    if (r * BATCH) % (n // 4) == 0 then
      collectgarbage()
      print(string.format("AT %d %d %d %.3f", r * BATCH, C.rss_bytes(),
        runtime.numgoroutine(), time.now() - t0))
      io.stdout:flush()
    end
  end
  os.exit(0)
end

local function serve(n, debug)
  local cmd = assert(C.self_command(""), "no command runs this script")
  local env = "LEAK_SERVER_REQUESTS=" .. n .. (debug and (" LUGO_DEBUG=" .. debug) or "")
  local p = assert(io.popen(env .. " " .. cmd .. " 2>/dev/null", "r"))
  local at = {}
  for line in p:lines() do
    local k, rss, gs, t = line:match("^AT (%d+) (%d+) (%d+) (%S+)")
    if k then
      at[#at + 1] = { n = tonumber(k), rss = tonumber(rss), gs = tonumber(gs), t = tonumber(t) }
      C.info("%s: %d requests, RSS %.1f MB, %d goroutines, %.2f s", debug or "no reclaim",
        at[#at].n, at[#at].rss / 2^20, at[#at].gs, at[#at].t)
    end
  end
  p:close()
  return at
end

local with = serve(N, "leakcheck=2,leakcheckperiod=50")
local without = serve(N // 10, nil)
assert(#with == 4 and #without == 4, "the children reported")
local per_leak = (without[4].rss - without[1].rss) / (without[4].n - without[1].n)
local most = 0
for _, a in ipairs(with) do most = math.max(most, a.gs) end
C.result{ name = "leak_server", metric = "goroutines_max", unit = "n",
          lugo = most, target = "na" }
C.result{ name = "leak_server", metric = "rss_1m", unit = "MB",
          lugo = with[4].rss / 2^20, baseline = (without[1].rss + per_leak * N) / 2^20,
          target = "na" }
C.result{ name = "leak_server", metric = "rss_growth", unit = "x",
          lugo = with[4].rss / with[1].rss, target = "<=2" }
C.result{ name = "leak_server", metric = "rss_per_leak_no_reclaim", unit = "KB",
          lugo = per_leak / 1024, target = "na" }
