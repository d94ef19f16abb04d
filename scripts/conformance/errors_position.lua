-- errors_position.lua: an error that is the caller's fault is a plain
-- string naming the function, with the position of the caller's line, as
-- luaL_error gives it.

local function at(f, name, what)
  local line = debug.getinfo(2, "l").currentline
  local ok, err = pcall(f)
  assert(not ok, name .. " should fail")
  assert(type(err) == "string", name .. ": error is a " .. type(err))
  local want = "errors_position.lua:" .. line .. ": " .. name
  assert(err:find(want, 1, true), ("%s: got %q, want prefix %q"):format(name, err, want))
  if what then assert(err:find(what, 1, true), ("%s: %q lacks %q"):format(name, err, what)) end
end

local ch = chan()
at(function() chan(-1) end, "chan", "non-negative integer")
at(function() ch.send(42) end, "ch:send", "channel expected, got number")
at(function() ch.recv("x") end, "ch:recv", "channel expected, got string")
at(function() chan.select({ "bogus" }) end, "chan.select", "must start with")
at(function() chan.select(1) end, "chan.select", "must be a table")
at(function() time.sleep("soon") end, "time.sleep", "must be a number")
at(function() time.timer({}) end, "time.timer", "must be a number")
at(function() time.after(nil) end, "time.after", "must be a number")
at(function() time.ticker(-1) end, "time.ticker", "non-positive")
at(function() time.afterfunc(1, 2) end, "time.afterfunc", "function expected")
at(function() go(nil) end, "go", "function expected")
at(function() sync.waitgroup():add(-1) end, "sync: negative WaitGroup counter")
at(function() sync.mutex():unlock() end, "sync: unlock of unlocked mutex")
at(function() sync.waitgroup().wait(nil) end, "waitgroup:wait", "waitgroup expected")
at(function() runtime.gomaxprocs(-3) end, "runtime.gomaxprocs")

-- closed-channel errors, raised where the call is
local closed = chan(1)
closed:close()
at(function() closed:close() end, "close of closed channel")
at(function() closed:send(1) end, "send on closed channel")

-- a sender parked when the channel closes fails at its own call
local c2 = chan()
local res = chan(1)
go(function()
  local line = debug.getinfo(1, "l").currentline + 1
  local ok, err = pcall(function() c2:send("x") end)
  res:send({ ok, err, line })
end)
runtime.gosched()
c2:close()
local r = res:recv()
assert(r[1] == false)
assert(r[2]:find("errors_position.lua:" .. r[3] .. ": send on closed channel", 1, true), r[2])

print("ok")
