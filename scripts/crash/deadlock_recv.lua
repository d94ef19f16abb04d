-- main blocked on a receive with nothing else alive: Go's deadlock report
local ch = chan()
ch:recv()
