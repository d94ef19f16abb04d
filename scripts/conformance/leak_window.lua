-- A check's probe runs in steps between its actor's goroutines' turns:
-- what they hand out meanwhile must not fool it. Each round, while
-- runtime.leaks() probes, the only holder of a channel sends it through a
-- buffered channel and lets go of it; a third goroutine receives it and
-- wakes the channel's waiter. The waiter is never reported leaked (it is
-- woken every round), whatever the interleaving.

local relay = chan(1)
for round = 1, 200 do
  local done = chan(1)
  local waiter
  do
    local ch = chan()
    waiter = go(function() ch:recv() done:send(true) end)
    go(function()
      runtime.gosched()
      relay:send(ch) -- a copy in flight: the channel handed out
      ch = nil
    end)
  end
  go(function() local c = relay:recv() runtime.gosched() c:send(1) end)
  for _, r in ipairs(runtime.leaks()) do
    assert(r.id ~= waiter, "round " .. round .. ": a waiter about to be woken was reported leaked")
  end
  done:recv()
end
print("ok")
