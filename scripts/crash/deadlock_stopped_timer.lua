-- a stopped timer is no timer at all: the deadlock is reported
local t = time.timer(10)
assert(t:stop())
local wg = sync.waitgroup()
wg:add(1)
wg:wait()
