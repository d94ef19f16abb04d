-- h:wait() gives true and what the actor's body returned, copied as
-- messages are (tables deep, channels shared); a result that cannot be
-- copied is the body's error; an error gives false and its message.

local ok, v = actor.spawn(function() return 42 end):wait()
assert(ok == true and v == 42)

local r = { actor.spawn(function(a, b) return a + b, { x = { "deep" } }, nil, "last" end, 1, 2):wait() }
assert(r[1] == true and r[2] == 3 and r[3].x[1] == "deep" and r[4] == nil and r[5] == "last")
assert(select("#", actor.spawn(function(a, b) return a, nil, b end, 1, 2):wait()) == 4)

-- Nothing returned: just true.
assert(select("#", actor.spawn(function() end):wait()) == 1)

-- A channel made by the actor comes back shared: it still works.
local h = actor.spawn(function()
  local ch = chan(1)
  ch:send("kept")
  return ch
end)
local ok2, ch = h:wait()
assert(ok2 and ch:recv() == "kept")
-- Waiting again gives the results again: the same channel.
local ok3, ch2 = h:wait()
assert(ok3 and ch2:send("again") == nil and ch:recv() == "again")

-- A function cannot be copied: the body's error.
local bad, err = actor.spawn(function() return print end):wait()
assert(bad == false and err:find("actor: cannot send a function at result1", 1, true), err)

-- An error: false and the message.
local failed, msg = actor.spawn(function() error("boom", 0) end):wait()
assert(failed == false and msg:find("boom", 1, true), msg)
-- An actor from a file is a program: what its chunk returns is not kept
-- (a module-like file returning functions still ends well).
local path = os.tmpname()
local f = assert(io.open(path, "w"))
f:write("return print, 1")
f:close()
local rf = { actor.spawn(path):wait() }
os.remove(path)
assert(#rf == 1 and rf[1] == true)
print("ok")
