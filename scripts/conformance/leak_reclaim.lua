-- runtime.reclaim(), case 10: it ends exactly the leaked goroutines, as
-- runtime.interrupt does: each stops at its park, its <close> handlers
-- run (with an error that says so), pcall does not catch it, a sender
-- did not send; it returns their records. Afterwards runtime.leaks() is
-- empty and runtime.numgoroutine() has dropped by as many. Goroutines
-- that are not leaked are not touched, and go on working.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

-- Each goroutine reports its end here (a global buffered channel with
-- room: a <close> handler should only let go). Its own wait is on a
-- different channel, so the report channel keeps no one alive.
ENDED = chan(100)
GLOBAL, GLOBAL2 = chan(), chan()

-- Starts `body` as a goroutine with a <close> handler that reports its
-- end on ENDED: the error it ended with, or "returned".
local function watched(name, body)
  return go(function()
    local _ <close> = setmetatable({}, {
      __close = function(_, err) ENDED:send({ name, err or "returned" }) end,
    })
    body()
  end)
end

local names = {}
local function leaker(name, body)
  local id = watched(name, body)
  names[id] = name
  return id
end

local leaked = {
  leaker("recv", function() chan():recv() end),
  leaker("send", function() chan():send({ "lost" }) end),
  leaker("select", function() chan.select({ "recv", chan() }, { "send", chan(), 1 }) end),
  leaker("pcall", function()
    local ok = pcall(function() chan():recv() end)
    ENDED:send({ "pcall", "caught: " .. tostring(ok) })
  end),
  leaker("nested", function()
    coroutine.resume(coroutine.create(function() chan():recv() end))
    ENDED:send({ "nested", "went on" })
  end),
  leaker("wg", function()
    local wg = sync.waitgroup()
    wg:add(1)
    wg:wait()
  end),
}
-- A mutex holder leaked on a channel, and its waiter.
local function locked()
  local mu = sync.mutex()
  local holder = leaker("holder", function() mu:lock() chan():recv() end)
  leaks.settle({ holder }, "chan receive")
  local waiter = leaker("lock", function() mu:lock() end)
  return holder, waiter
end
local holder, waiter = locked()
leaked[#leaked + 1] = holder
leaked[#leaked + 1] = waiter

-- Not leaked: on a global channel, asleep, runnable.
local fine = {
  watched("global", function() GLOBAL:recv() end),
  watched("global send", function() GLOBAL2:send("hello") end),
  watched("sleep", function() time.sleep(3600) end),
}
STOP = false
local spinner = watched("spin", function() while not STOP do runtime.gosched() end end)

leaks.settle(leaked)
leaks.settle(fine)
leaks.check(leaked, "before the reclaim")
local before = runtime.numgoroutine()

local t0 = time.now()
local got = runtime.reclaim()
leaks.exactly(got, leaked, "reclaimed")
for _, r in ipairs(got) do
  assert(r.state and r.stack and r.actor == actor.self():id(), "a full record")
end

-- Each reclaimed goroutine ended through its handler, at once, with an
-- error naming why; none went on past its park.
local seen = {}
for _ = 1, #leaked do
  local e = ENDED:recv()
  local name, err = e[1], e[2]
  assert(not seen[name], "one end per goroutine: " .. name)
  seen[name] = true
  assert(type(err) == "string"
    and (err:find("goroutine leaked", 1, true) or err:find("interrupted", 1, true)),
    name .. " ended with: " .. tostring(err))
end
for _, id in ipairs(leaked) do
  assert(seen[names[id]], names[id] .. " ended")
  leaks.gone(id)
end
assert(time.now() - t0 < 1, "they stopped at once")
assert(chan.select({ "recv", ENDED }, { "default" }) == 2, "nothing more ended")

for _ = 1, 100 do
  if runtime.numgoroutine() == before - #leaked then break end
  runtime.gosched()
end
assert(runtime.numgoroutine() == before - #leaked,
  runtime.numgoroutine() .. " goroutines, want " .. (before - #leaked))
leaks.check({}, "after the reclaim")
leaks.exactly(runtime.reclaim(), {}, "a second reclaim")

-- The goroutines that were fine are untouched and work on.
assert(GLOBAL2:recv() == "hello")
GLOBAL:send("wake")
local ends = {}
for _ = 1, 2 do ends[ENDED:recv()[1]] = true end
assert(ends["global"] and ends["global send"], "the global channel's goroutines finished")
local alive = {}
for _, g in ipairs(runtime.goroutines()) do alive[g.id] = g.state end
assert(alive[fine[3]] == "sleep", "the sleeper sleeps on")
assert(alive[spinner], "the spinner runs on")
STOP = true
assert(ENDED:recv()[1] == "spin")
print("ok")
