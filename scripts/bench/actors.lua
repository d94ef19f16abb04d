-- actors.lua: actors in parallel, messages between them, spawning them.
--
-- lugo:     (1) K CPU-bound actors (K = 2, 4, 16) vs the same work done
--           serially by main; (2) two actors exchanging small tables over a
--           shared chan(128); (3) spawn + wait 10k actors that return at
--           once, and the heap each idle actor holds.
-- baseline: (1) the serial run in one actor; (2), (3) none.
-- figures:  speedup (target >= 1.8x on 2 cores), messages/s (>= 2M/s),
--           actors/s (>= 50k/s) and RSS per idle actor (<= 40 KB): the
--           targets of issue 13.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local WORK = C.size(20000000, 2000000)

local function work(n)
  local s = 0
  for i = 1, n do s = s + i % 7 end
  return s
end

for _, K in ipairs({ 2, 4, 16 }) do
  local per = WORK // K * 2
  local serial = C.best_time("serial K=" .. K, function()
    for _ = 1, K do work(per) end
  end)
  local parallel = C.best_time("actors K=" .. K, function()
    local hs = {}
    for k = 1, K do
      hs[k] = actor.spawn(function(n)
        local s = 0
        for i = 1, n do s = s + i % 7 end
        return s
      end, per)
    end
    for k = 1, K do assert(hs[k]:wait()) end
  end)
  C.result{ name = "actors_cpu_k" .. K, metric = "time", unit = "s",
            lugo = parallel, baseline = serial, target = "<=0.556x" }
end

-- (2) messages between two actors
local N = C.size(1000000, 100000)
local t = C.best_time("messages", function()
  local c, done = chan(128), chan()
  local prod = actor.spawn(function(c, n)
    for i = 1, n do c:send({ i, "m" }) end
    c:close()
  end, c, N)
  local cons = actor.spawn(function(c, done)
    local n = 0
    for m in c:range() do n = n + m[1] - m[1] + 1 end
    done:send(n)
  end, c, done)
  assert(done:recv() == N)
  prod:wait()
  cons:wait()
end)
C.result{ name = "actors_msgs", metric = "rate", unit = "msgs/s",
          lugo = N / t, target = ">=2000000" }

-- (3) spawn + wait, and memory per idle actor
local S = C.size(10000, 2000)
local ts = C.best_time("spawn+wait", function()
  local hs = {}
  for i = 1, S do hs[i] = actor.spawn(function() end) end
  for i = 1, S do hs[i]:wait() end
end)
C.result{ name = "actors_spawn", metric = "rate", unit = "actors/s",
          lugo = S / ts, target = ">=50000" }

C.full_gc()
local rss0 = C.rss_bytes()
local IDLE = C.size(2000, 500)
local gate = chan()
local idle = {}
for i = 1, IDLE do idle[i] = actor.spawn(function(g) g:recv() end, gate) end
time.sleep(0.2)
local per_actor = (C.rss_bytes() - rss0) / IDLE / 1024
gate:close()
for i = 1, IDLE do idle[i]:wait() end
C.result{ name = "actors_idle", metric = "rss_per_actor", unit = "KB",
          lugo = per_actor, target = "<=40" }
