-- every goroutine blocked in a select that nothing can complete
local a, b, c, d = chan(), chan(), chan(), chan()
go(function() chan.select({ "recv", a }, { "send", d, 1 }) end)
go(function() chan.select({ "recv", b }, { "recv", c }) end)
chan.select({ "recv", a }, { "recv", c })
