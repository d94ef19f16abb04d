-- cancel.lua: what it costs to stop parked work.
--
-- lugo:     N = 10k goroutines, each parked in ch:recv(ctx) on a channel of
--           its own; main cancels the context and waits on a waitgroup
--           until every one has returned `nil, false, "context canceled"`.
--           Timed from cancel() to the wait's return.
--           Then the same N parked in ch:recv() without a context, stopped
--           with runtime.interrupt(id) one by one (lugo alone: no peer can
--           stop a goroutine from outside); timed from the first interrupt
--           until all have ended.
-- baseline: resuming N suspended coroutines once each in a plain Lua state,
--           the cheapest wake-up there is.
-- figures:  ns per goroutine stopped, target <= 1 us each; with --peers,
--           cancel beside Go's (N goroutines in select on <-ctx.Done() and a
--           channel of their own, peers/go/cancel.go), target <= Go P=1.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local N = C.size(10000, 1000)

-- The floor: N coroutines suspended at a yield, each resumed once per
-- repetition (they loop, so they are suspended again for the next).
local cos
local function floor()
  local resume = coroutine.resume
  if not cos then
    local create, yield = coroutine.create, coroutine.yield
    cos = {}
    for i = 1, N do
      cos[i] = create(function() while true do yield() end end)
      resume(cos[i])
    end
  end
  for i = 1, N do resume(cos[i]) end
end

if C.plain then
  floor() -- made before the timed repetitions
  C.floor("resume", floor)
end

-- Parks N goroutines with `body`, returns their ids once all are parked.
local function park(body)
  local ready, ended = sync.waitgroup(), sync.waitgroup()
  ready:add(N)
  ended:add(N)
  local ids = {}
  for i = 1, N do
    ids[i] = go(function()
      local _ <close> = setmetatable({}, { __close = function() ended:done() end })
      ready:done()
      body()
    end)
  end
  ready:wait()
  for _ = 1, 3 do runtime.gosched() end -- the last ones reach their wait
  return ids, ended
end

local function timed(label, stop)
  local best = math.huge
  for r = 1, C.reps do
    C.full_gc()
    local t = stop()
    C.info("%s rep %d: %.4f s", label, r, t)
    best = math.min(best, t)
  end
  return best
end

local cancel_s = timed("cancel", function()
  local ctx, cancel = context.background():withcancel()
  local _, ended = park(function()
    local v, ok, err = chan():recv(ctx)
    assert(v == nil and not ok and err == "context canceled")
  end)
  local t0 = time.now()
  cancel()
  ended:wait()
  return time.now() - t0
end)

local interrupt_s = timed("interrupt", function()
  local ids, ended = park(function() chan():recv() end)
  local t0 = time.now()
  for i = 1, N do runtime.interrupt(ids[i]) end
  ended:wait()
  return time.now() - t0
end)

local base = C.floor("resume", floor)
C.result{ name = "cancel", metric = "per_g", unit = "ns", lugo = cancel_s / N * 1e9,
          baseline = base and base / N * 1e9, target = "<=1000" }
C.result{ name = "interrupt", metric = "per_g", unit = "ns", lugo = interrupt_s / N * 1e9,
          baseline = base and base / N * 1e9, target = "<=1000" }
