-- an actor leaves an afterfunc behind and ends: the afterfunc can never
-- run, so it does not hide the deadlock of the main goroutine
local h = actor.spawn(function()
  time.afterfunc(3600, function() print("never") end)
end)
assert(h:wait())
chan():recv()
