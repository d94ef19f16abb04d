-- runtime.leaks(), case 9, the classic leak: a handler starts a worker
-- that sends its result on an unbuffered channel, waits for it in a
-- select with a timeout (time.after), and returns on the timeout; the
-- late worker then stays parked for good sending on a channel nothing
-- references. With 20 such requests, exactly those 20 workers are
-- leaked; handlers whose worker answered in time, goroutines waiting on
-- a global channel, a sleeping one, a runnable one are not. The records
-- say what each worker waits for, where, who started it, its labels.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

-- The workers of the slow requests wait at this gate (a global) until
-- every handler has timed out, so each handler's timeout surely fires
-- first; then they send their late results.
GATE = chan()
WORKERS = chan(100) -- each handler reports {handler id, worker id, outcome}

local function handler(i, slow)
  runtime.setlabel("request", tostring(i))
  local result = chan()
  local worker = go(function()
    if slow then GATE:recv() end
    result:send(i * i)
  end)
  local case, v = chan.select({ "recv", result }, { "recv", time.after(0.01) })
  WORKERS:send({ runtime.id(), worker, case == 1 and v or "timeout" })
end

local slow, handlers = {}, {}
for i = 1, 20 do handlers[#handlers + 1] = go(handler, i, true) end
for i = 21, 25 do handlers[#handlers + 1] = go(handler, i, false) end
local creator = {}
for _ = 1, 25 do
  local r = WORKERS:recv()
  if r[3] == "timeout" then
    slow[#slow + 1] = r[2]
    creator[r[2]] = r[1]
  else
    assert(r[3] % 1 == 0, "a fast worker answered")
  end
end
assert(#slow == 20, "the 20 slow requests timed out")
for _, h in ipairs(handlers) do leaks.gone(h) end

-- Goroutines that are fine.
JOBS = chan()
local pool = {}
for _ = 1, 3 do pool[#pool + 1] = go(function() for _ in JOBS:range() do end end) end
local sleeper = go(function() time.sleep(3600) end)
STOP = false
local spinner = go(function() while not STOP do runtime.gosched() end end)

leaks.check({}, "the workers wait at the gate")
GATE:close()
leaks.settle(slow, "chan send")
leaks.settle(pool, "chan receive")
leaks.settle({ sleeper }, "sleep")
local got = runtime.leaks()
leaks.exactly(got, slow, "the 20 late workers")

-- What the records say.
local script = arg[0]:match("([^/]+)$")
for _, r in ipairs(got) do
  assert(r.actor == actor.self():id())
  assert(r.state == "chan send", r.state)
  assert(type(r.waiting) == "number" and r.waiting >= 0)
  assert(r.waiting_on and r.waiting_on:find("^chan%(cap 0"), tostring(r.waiting_on))
  assert(r.stack:find(script, 1, true), r.stack)
  assert(r.created_by and r.created_by:find("in goroutine " .. creator[r.id], 1, true),
    tostring(r.created_by))
  assert(r.labels and r.labels.request, "the worker has its handler's labels")
end

-- The fine goroutines work on; the leaks stay.
for i = 1, 3 do JOBS:send(i) end
leaks.check(slow, "after some jobs")
JOBS:close()
for _, id in ipairs(pool) do leaks.gone(id) end
STOP = true
leaks.gone(spinner)
leaks.check(slow, "the pool and the spinner ended")
print("ok")
