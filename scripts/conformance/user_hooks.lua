-- user_hooks.lua: a script's own debug.sethook keeps working while lugo
-- preempts it (the preemption's count hook is chained with the user's:
-- set aside, its events passed on, put back).

local old = runtime.gomaxprocs(1)
-- a neighbour that makes the spinning loop below be preempted
local stop = false
go(function() while not stop do runtime.gosched() end end)

local fired = 0
debug.sethook(function() fired = fired + 1 end, "", 100000)
local x = 0
for i = 1, 2e7 do x = x + i end
local f, mask, count = debug.gethook()
debug.sethook()
assert(f ~= nil and count == 100000, "the hook is still there")
-- about 400 events (4e7 instructions); a preemption may restart the count
assert(fired >= 300 and fired <= 400, fired)
assert(runtime.stats().preemptions > 0, "it was preempted")

-- an instruction limit made with a hook still stops a loop
local ok, err = pcall(function()
  debug.sethook(function() error("instruction limit") end, "", 1e6)
  while true do end
end)
debug.sethook()
assert(not ok and err:find("instruction limit"), err)

-- line hooks go on too
local lines = 0
debug.sethook(function(ev) if ev == "line" then lines = lines + 1 end end, "l")
for _ = 1, 3e5 do local _ = 1 end
debug.sethook()
assert(lines > 3e5, lines)

stop = true
runtime.gomaxprocs(old)
print("ok")
