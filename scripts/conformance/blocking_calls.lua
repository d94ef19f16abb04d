-- blocking_calls.lua: os.execute, io.popen and file reads block their M,
-- with its P marked as in a blocking call; sysmon hands a P whose call
-- lasts over 10 ms to another M, and the M takes it back afterwards. All of
-- that is invisible to the script: results are as in plain Lua and the
-- scheduler works as before.

for _ = 1, 3 do
  local ok, how, code = os.execute("sleep 0.02")
  assert(ok == true and how == "exit" and code == 0)
end
local ok, how, code = os.execute("exit 3")
assert(ok == nil and how == "exit" and code == 3)
assert(runtime.stats().handoffs >= 1, "a 20 ms call had its P handed off")

-- a goroutine blocked in a call; main and timers carry on once it returns
local done = chan(1)
go(function()
  os.execute("sleep 0.03")
  done:send("back")
end)
assert(done:recv() == "back")

-- reads through the wrappers
local p = io.popen("printf 'one\\ntwo\\n'")
assert(p:read("l") == "one")
local rest = {}
for l in p:lines() do rest[#rest + 1] = l end
p:close()
assert(#rest == 1 and rest[1] == "two")
local me = assert(arg and arg[0])
local n = 0
for _ in io.lines(me) do n = n + 1 end
assert(n > 10)
local f = assert(io.open(me))
assert(f:read("l"):find("blocking_calls.lua", 1, true))
f:close()

-- scheduling as usual afterwards
local a, b = chan(), chan()
go(function() for _ = 1, 100 do b:send(a:recv() + 1) end end)
local v = 0
for _ = 1, 100 do a:send(v) v = b:recv() end
assert(v == 100)

print("ok")
