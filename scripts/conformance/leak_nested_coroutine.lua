-- runtime.leaks(), case 8: a goroutine parked inside a coroutine of its
-- own (coroutine.resume, or a function made by coroutine.wrap, of a
-- coroutine that blocks on a channel; two levels deep too) is leaked
-- when that channel is unreachable, and not when the channel is
-- reachable from a global.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

GLOBAL = chan()
REPORT = chan(20)

-- Runs `body` in a coroutine of its own, by `how`: its results.
local function run(how, body)
  if how == "wrap" then return coroutine.wrap(body)() end
  return select(2, coroutine.resume(coroutine.create(body)))
end

-- A goroutine parked in a coroutine (by `how`), on the channel `get`
-- gives.
local function nested(how, get)
  return go(function()
    REPORT:send(run(how, function() return get():recv() end))
  end)
end
-- Two levels deep (a coroutine that runs a coroutine, both by `how`),
-- the inner one having yielded once before.
local function deep(how, get)
  return go(function()
    local function body()
      coroutine.yield("first")
      return get():recv()
    end
    local inner
    if how == "wrap" then
      inner = coroutine.wrap(body)
    else
      local co = coroutine.create(body)
      inner = function() return select(2, coroutine.resume(co)) end
    end
    assert(inner() == "first")
    REPORT:send(run(how, function() return inner() end))
  end)
end
-- The channel held by the goroutine's own stack, outside the coroutine:
-- still unreachable from anything that can run.
local function held_outside(how)
  return go(function()
    local ch = chan()
    REPORT:send(run(how, function() return ch:recv() end))
    ch:close()
  end)
end

local unreachable = function() return chan() end
local global = function() return GLOBAL end

-- The same goroutines, for coroutine.resume, then coroutine.wrap.
local leaked, fine = {}, {}
for _, how in ipairs({ "resume", "wrap" }) do
  leaked[#leaked + 1] = nested(how, unreachable)
  leaked[#leaked + 1] = deep(how, unreachable)
  leaked[#leaked + 1] = held_outside(how)
  fine[#fine + 1] = nested(how, global)
  fine[#fine + 1] = deep(how, global)
  leaks.settle(leaked, "chan receive")
  leaks.settle(fine, "chan receive")
  local got = runtime.leaks()
  leaks.exactly(got, leaked, "nested coroutines, up to " .. how)
  for _, r in ipairs(got) do
    assert(r.state == "chan receive", r.state)
    -- waiting_on may be nil (the wait object of a goroutine parked in a
    -- coroutine of its own is not always named); if named, a channel.
    assert(r.waiting_on == nil or r.waiting_on:find("^chan%("), tostring(r.waiting_on))
  end
end

-- The ones on the global channel are woken through it, and return
-- through their coroutines.
for i = 1, #fine do GLOBAL:send(i) end
local sum = 0
for _ = 1, #fine do sum = sum + REPORT:recv() end
assert(sum == #fine * (#fine + 1) // 2, "each fine goroutine got its value")
for _, id in ipairs(fine) do leaks.gone(id) end
leaks.check(leaked, "after the wake-ups")
print("ok")
