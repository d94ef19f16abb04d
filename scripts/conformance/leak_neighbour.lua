-- runtime.leaks(): a leaked goroutine stays reported when a goroutine of
-- the same actor that is not leaked waits on something held from
-- outside the actor's Lua heap: a pending time.after channel (a handler
-- still in its select with a timeout), a time.timer's channel, a
-- context's done channel, a channel another live actor holds. Those
-- neighbours are never reported themselves (they can be woken); they
-- must not hide the leak next to them. Each neighbour is tried alone,
-- then ended; a neighbour waiting on a global channel is the baseline.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

local control = go(function() chan():recv() end)
leaks.settle({ control }, "chan receive")
leaks.check({ control }, "the control alone")

local hold = chan()
local keeper_ack = chan()

local neighbours = {
  { "a goroutine waiting on a global channel", function()
    GLOBAL = chan()
    return go(function() GLOBAL:recv() end)
  end },
  { "a handler in a select with a pending time.after", function()
    return go(function()
      chan.select({ "recv", chan() }, { "recv", time.after(3600) })
    end)
  end },
  { "a goroutine waiting on a time.timer's channel", function()
    local t = time.timer(3600)
    return go(function() t.c:recv() end)
  end },
  { "a goroutine waiting on ctx:done()", function()
    local ctx = context.background():withcancel()
    return go(function() ctx:done():recv() end)
  end },
  { "a goroutine waiting on a channel a live actor holds", function()
    local ch = chan()
    actor.spawn(function(ch, hold, ack)
      ack:send(true)
      hold:recv()
      ch:send("late")
    end, ch, hold, keeper_ack)
    assert(keeper_ack:recv())
    return go(function() ch:recv() end)
  end },
}

local failures = {}
for _, n in ipairs(neighbours) do
  local id = n[2]()
  leaks.settle({ id })
  local ok, err = pcall(leaks.check, { control }, n[1])
  if not ok then failures[#failures + 1] = err end
  assert(runtime.interrupt(id))
  leaks.gone(id)
end
assert(#failures == 0, #failures .. " of " .. #neighbours .. " hid the leak:\n"
  .. table.concat(failures, "\n"))
print("ok")
