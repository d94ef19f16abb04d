-- two actors each wait for the other: deadlock detection and the dump span
-- every actor
local a2b, b2a = chan(), chan()
local h = actor.spawn(function(inbox, outbox)
  inbox:recv()      -- waits for main, which waits for this actor
  outbox:send(1)
end, a2b, b2a)
b2a:recv()
