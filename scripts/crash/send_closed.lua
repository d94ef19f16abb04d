-- send on a closed channel, not caught: panic, exit 2
local ch = chan(1)
ch:close()
ch:send(1)
