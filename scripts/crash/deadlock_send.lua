-- main blocked on a send nobody receives; a goroutine blocked on a receive
-- from another channel
local a, b = chan(), chan()
go(function() b:recv() end)
a:send(1)
