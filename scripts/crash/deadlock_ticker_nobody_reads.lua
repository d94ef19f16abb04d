-- a ticker whose channel nobody waits on cannot wake anybody: it must not
-- hide the deadlock (Go's checkdead is silenced by any timer; lugo's is not)
local tk = time.ticker(0.001)
local ch = chan()
ch:recv()
