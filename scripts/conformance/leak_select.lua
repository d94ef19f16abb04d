-- runtime.leaks(), case 13: a goroutine in a select with several cases
-- is not leaked when one case's channel (recv or send) is reachable from
-- a global, and is leaked when every case's channel is unreachable
-- (recv and send cases alike, a nil case among them never fires). One on
-- a context's done channel is not leaked (the context holds it). A
-- select with no case, or only nil cases, blocks on purpose: never
-- reported. A select with a default case never parks.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

GR, GS = chan(), chan()

local function sel(...)
  local cases = { ... }
  return go(function() chan.select(table.unpack(cases)) end)
end

-- Every case's channel made here and dropped: unreachable.
local function unreachable()
  return {
    sel({ "recv", chan() }, { "recv", chan() }),
    sel({ "recv", chan() }, { "send", chan(), "v" }, { "send", chan(), { "t" } }),
    sel({ "send", chan(), 1 }, { "recv", nil }, { "recv", chan() }),
    sel({ "recv", chan(), function() end }, { "send", chan(), 1, function() end }),
  }
end
-- One case's channel is a global's (recv, or send); the others not.
local function reachable()
  return {
    sel({ "recv", chan() }, { "recv", GR }, { "send", chan(), 1 }),
    sel({ "send", chan(), 1 }, { "send", GS, "to global" }),
    sel({ "recv", nil }, { "recv", chan() }, { "recv", GR }),
  }
end

-- A case on a context's done channel (the context holds it; a local
-- context here, never cancelled): not leaked. The same for a receive
-- given a context.
local function with_context()
  local ctx = context.background():withcancel()
  return {
    sel({ "recv", chan() }, { "recv", ctx:done() }),
    go(function() chan():recv(ctx) end),
  }
end

local leaked = unreachable()
local ctxs = with_context()
local fine = reachable()
local on_purpose = { sel(), go(function() chan.select({ "recv", nil }, { "send", nil, 1 }) end) }
leaks.settle(leaked, "select")
leaks.settle(fine, "select")
leaks.settle(on_purpose)
leaks.settle(ctxs)
local got = runtime.leaks()
leaks.exactly(got, leaked, "selects")
for _, r in ipairs(got) do assert(r.state == "select", r.state) end

-- The reachable ones are woken through their global channels.
assert(GS:recv() == "to global")
GR:send("a")
GR:send("b")
for _, id in ipairs(fine) do leaks.gone(id) end
leaks.check(leaked, "the reachable selects were woken")

-- Now a select whose only reachable case is a global that is dropped
-- afterwards: leaked then.
GX = chan()
local later = sel({ "recv", chan() }, { "recv", GX })
leaks.settle({ later }, "select")
leaks.check(leaked, "a select on a global")
GX = nil
leaks.check({ later, table.unpack(leaked) }, "its global dropped")
print("ok")
