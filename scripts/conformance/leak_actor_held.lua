-- runtime.leaks(), case 3: a channel reachable only through a table that
-- another actor holds (received from a channel, kept in a local or a
-- global, while that actor stays alive, parked on a channel the main
-- goroutine holds) is not leaked. Once that actor lets go of the table
-- (it ends, or it sets its local or global to nil and stays alive), the
-- goroutine waiting on the channel in the main actor is leaked. Also: a
-- goroutine of another actor parked on a channel nothing holds is leaked
-- (its record names its actor), and a goroutine waiting for an actor to
-- end (h:wait()) is never reported.
--
-- Then two keepers at once, one keeping its table and one dropping it:
-- only the dropped one's waiter is leaked (a goroutine that the keeper
-- still holding its channel may wake does not make its neighbours in the
-- main actor live).

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

local me = actor.self():id()

-- An actor body: takes one table from `inbox` and keeps it in a local,
-- reports its goroutine id on `ack`, waits on `hold`; then, if `ends`,
-- ends, else drops the table, says so, and waits on `hold` again.
local function keeper_local(inbox, hold, ack, ends)
  local kept = inbox:recv()
  ack:send(runtime.id())
  hold:recv()
  if ends then return type(kept.box[1]) end
  kept = nil
  ack:send("dropped")
  hold:recv()
end

-- The same keeping the table in a global.
local function keeper_global(inbox, hold, ack, ends)
  KEPT = inbox:recv()
  ack:send(runtime.id())
  hold:recv()
  if ends then return type(KEPT.box[1]) end
  KEPT = nil
  ack:send("dropped")
  hold:recv()
end

-- An actor with a goroutine parked on a channel nothing holds: leaked,
-- in that actor. A goroutine of ours waiting for that actor to end: not
-- reported (waits on an actor never are).
local stuck_ids = chan(1)
local stuck = actor.spawn(function(ids)
  ids:send(runtime.id())
  chan():recv()
end, stuck_ids)
local sg = stuck_ids:recv()
local hw = go(function() stuck:wait() end)
leaks.settle({ sg }, "chan receive")
leaks.settle({ hw }, "actor wait")
local got = runtime.leaks()
leaks.exactly(got, { sg }, "a goroutine of another actor")
assert(got[1].actor == stuck:id() and got[1].actor ~= me, "the record names its actor")
assert(got[1].state == "chan receive")

local hold, ack = chan(), chan()

-- Starts a keeper actor and hands it a table holding a fresh channel (in
-- a field of a field); a goroutine of ours waits on that channel, which
-- nothing in this actor holds. Returns the keeper, its goroutine, and
-- the waiter.
local function keeper(body, ends)
  local inbox, ch = chan(), chan()
  local h = actor.spawn(body, inbox, hold, ack, ends)
  local w = go(function() ch:recv() end)
  inbox:send({ box = { ch } })
  local kg = ack:recv()
  leaks.settle({ w, kg }, "chan receive")
  return h, kg, w
end

-- The keeper ends: its local, or its global, goes with its state.
for _, body in ipairs({ keeper_local, keeper_global }) do
  local h, _, w = keeper(body, true)
  leaks.check({ sg }, "a live keeper holds the channel")
  hold:send(true)
  local ok, kind = h:wait()
  assert(ok and kind == "userdata", "the keeper held the channel to its end")
  leaks.check({ sg, w }, "the keeper ended")
  assert(runtime.interrupt(w))
  leaks.gone(w)
end

-- The keeper stays alive (parked on `hold`, which the main goroutine
-- holds: not leaked itself) but sets its local, or its global, to nil.
for _, body in ipairs({ keeper_local, keeper_global }) do
  local h, kg, w = keeper(body, false)
  leaks.check({ sg }, "a live keeper holds the channel")
  hold:send(true)
  assert(ack:recv() == "dropped")
  leaks.settle({ kg }, "chan receive")
  leaks.check({ sg, w }, "the keeper dropped its table")
  assert(runtime.interrupt(w))
  leaks.gone(w)
  hold:send(true)
  assert(h:wait() == true)
end
-- Two keepers at once; one drops its table, the other keeps it.
local h1, k1, w1 = keeper(keeper_local, false)
local h2, k2, w2 = keeper(keeper_global, false)
leaks.check({ sg }, "two live keepers hold the channels")
hold:send(true)
assert(ack:recv() == "dropped")
-- Which keeper took the send is not known: find the one that dropped.
leaks.settle({ k1, k2 }, "chan receive")
local got = runtime.leaks()
local dropped = leaks.find(got, w1) and w1 or w2
leaks.exactly(got, { sg, dropped }, "one keeper of two dropped its table")
hold:send(true)
assert(ack:recv() == "dropped")
leaks.settle({ k1, k2 }, "chan receive")
leaks.check({ sg, w1, w2 }, "both keepers dropped their tables")
hold:send(true)
hold:send(true)
assert(h1:wait() == true and h2:wait() == true)
leaks.check({ sg, w1, w2 }, "both keepers ended")
print("ok")
