-- A connection moves between actors: sent over a channel (or given to a
-- spawned actor) it belongs to the actor that receives it, with what was
-- read but not returned; the sender's handle raises "use of a moved
-- connection". Until it is received it stays the sender's (a select whose
-- send case loses keeps it).

local l = assert(net.listen("127.0.0.1:0"))
local addr = l:addr()
local conns, done = chan(4), chan(4)

-- A worker actor echoes the next line of each connection it is given.
actor.spawn(function(conns, done)
  for c in conns:range() do
    local line = assert(c:readline())
    assert(c:write("worker got " .. line .. "\n"))
    c:close()
    done:send(true)
  end
end, conns, done)

-- The acceptor reads the first line itself, then hands the connection on.
local kept = {}
go(function()
  for i = 1, 3 do
    local c = assert(l:accept())
    assert(c:readline() == "first " .. i)
    -- A select whose send case loses: the connection stays here.
    local never = chan()
    assert(chan.select({ "send", never, c }, { "default" }) == 2)
    assert(c:addr())
    conns:send(c)
    kept[i] = c
  end
end)

for i = 1, 3 do
  local c = assert(net.dial(addr))
  -- Both lines at once: the second may sit in the acceptor's buffer.
  assert(c:write(("first %d\nsecond %d\n"):format(i, i)))
  assert(c:readline() == "worker got second " .. i)
  c:close()
  assert(done:recv())
  local ok, err = pcall(kept[i].readline, kept[i])
  assert(not ok and err:find("conn:readline: use of a moved connection", 1, true), err)
end
conns:close()

-- Given to a spawned actor: moved there when it starts.
go(function()
  local c = assert(l:accept())
  local h = actor.spawn(function(c)
    assert(c:write("from the spawned actor\n"))
    c:close()
  end, c)
  assert(h:wait())
  local ok, err = pcall(c.write, c, "x")
  assert(not ok and err:find("use of a moved connection", 1, true), err)
  done:send(true)
end)
local c = assert(net.dial(addr))
assert(c:readline() == "from the spawned actor")
assert(done:recv())
c:close()
l:close()
print("ok")
