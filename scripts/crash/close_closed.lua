-- close of a closed channel in a goroutine, not caught: panic, exit 2
local ch = chan()
ch:close()
go(function() ch:close() end)
chan():recv()
