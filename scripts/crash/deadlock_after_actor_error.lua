-- an actor raises and nobody waits for it; the program then deadlocks
-- waiting for what the actor would have sent: the dump says why
local c = chan()
actor.spawn(function(c)
  error("the worker broke")
  c:send(1)
end, c)
c:recv()
