-- runtime.leaks(), case 3: a channel reachable only through a table that
-- another actor holds (received from a channel, kept in a local or a
-- global, while that actor stays alive, parked on a channel the main
-- goroutine holds) is not leaked; once that actor lets go of it (sets it
-- to nil, or ends), its waiter in the main actor is leaked. Also: a
-- goroutine of another actor parked on a channel nothing holds is
-- leaked (its record names its actor), and a goroutine waiting on an
-- actor (h:wait()) is never reported.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

local me = actor.self():id()

-- An actor that takes one table from `inbox`, keeps it in a local,
-- reports its goroutine id on `ack`, and waits on `hold`; then drops the
-- table, says so, and waits on `hold` again.
local function keeper_local(inbox, hold, ack)
  local kept = inbox:recv()
  assert(type(kept.box[1]) == "userdata")
  ack:send(runtime.id())
  hold:recv()
  kept = nil
  ack:send("dropped")
  hold:recv()
end

-- The same keeping the table in a global; it ends on the first `hold`.
local function keeper_global(inbox, hold, ack)
  KEPT = inbox:recv()
  ack:send(runtime.id())
  hold:recv()
end

-- Sends a table holding a fresh channel to an actor; returns the id of a
-- goroutine waiting on that channel (nothing in this actor holds it).
local function handed(inbox)
  local ch = chan()
  local w = go(function() ch:recv() end)
  inbox:send({ box = { ch } })
  return w
end

local hold, ack = chan(), chan()
local inbox1, inbox2 = chan(), chan()
local h1 = actor.spawn(keeper_local, inbox1, hold, ack)
local h2 = actor.spawn(keeper_global, inbox2, hold, ack)
local w1 = handed(inbox1)
local k1 = ack:recv()
local w2 = handed(inbox2)
local k2 = ack:recv()

-- An actor with a goroutine parked on a channel nothing holds: leaked,
-- in that actor. A goroutine of ours waiting for that actor to end: not
-- reported (waits on an actor never are).
local stuck_ids = chan(1)
local h3 = actor.spawn(function(ids)
  ids:send(runtime.id())
  chan():recv()
end, stuck_ids)
local k3 = stuck_ids:recv()
local hw = go(function() h3:wait() end)

leaks.settle({ w1, w2 }, "chan receive")
leaks.settle({ k1, k2, k3 }, "chan receive")
leaks.settle({ hw })
local got = runtime.leaks()
leaks.exactly(got, { k3 }, "tables held by live actors")
assert(got[1].actor == h3:id() and got[1].actor ~= me, "the record names its actor")
assert(got[1].state == "chan receive")

-- The first actor sets its local to nil (and parks again on `hold`).
hold:send(true)
assert(ack:recv() == "dropped")
leaks.settle({ k1 }, "chan receive")
leaks.check({ k3, w1 }, "the first actor dropped its table")

-- The second actor ends (its global goes with its state).
hold:send(true)
assert(h2:wait() == true)
leaks.check({ k3, w1, w2 }, "the second actor ended")

-- The first actor ends too; nothing else changes.
hold:send(true)
assert(h1:wait() == true)
leaks.check({ k3, w1, w2 }, "the first actor ended")
print("ok")
