-- a waitgroup that is never done
local wg = sync.waitgroup()
wg:add(2)
go(function() wg:done() end)
wg:wait()
