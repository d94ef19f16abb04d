-- a pending timer whose channel nobody will ever read does not keep a
-- program whose goroutines are all blocked elsewhere alive
local unread = time.after(60)
local a, b = chan(), chan()
go(function() a:recv() end)
chan.select({ "recv", b })
