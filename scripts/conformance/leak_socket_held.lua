-- runtime.leaks(), case 5: a channel reachable only through a goroutine
-- parked in a socket wait (blocked reading a loopback TCP connection that
-- no data comes on) is not leaked: a socket waiter is woken by the
-- network, and may then use what its stack holds. The same for a
-- goroutine blocked in accept. When the sockets close, the readers wake
-- and hand their channels' waiters what they wait for.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

local l = assert(net.listen("127.0.0.1:0"))
local c = assert(net.dial(l:addr()))
local s = assert(l:accept())

DONE = chan(10)

-- A reader of `sock` holding a fresh channel in an upvalue, and a
-- goroutine waiting on that channel; nothing else holds the channel.
local function reader(sock, how)
  local ch = chan()
  local w = go(function() DONE:send({ "waiter", ch:recv() }) end)
  local r = go(function()
    local got, err = sock[how](sock)
    ch:send(err or "data")
  end)
  return w, r
end

-- A control: a channel nothing holds. It alone is leaked.
local control = go(function() chan():recv() end)
local w1, r1 = reader(s, "read")
local w2, r2 = reader(c, "readline")
local w3, r3 = reader(l, "accept")
leaks.settle({ control, w1, w2, w3 }, "chan receive")
leaks.settle({ r1, r2, r3 })
for _, g in ipairs(runtime.goroutines()) do
  if g.id == r1 or g.id == r2 or g.id == r3 then
    assert(g.state ~= "chan send", "the readers wait on their sockets")
  end
end
leaks.check({ control }, "socket waiters hold the channels")
leaks.check({ control }, "again")

-- Close the sockets: each reader wakes with "closed" and hands it on.
c:close(); s:close(); l:close()
local seen = 0
for _ = 1, 3 do
  local msg = DONE:recv()
  assert(msg[1] == "waiter" and msg[2] == "closed", tostring(msg[2]))
  seen = seen + 1
end
assert(seen == 3)
for _, id in ipairs({ w1, w2, w3, r1, r2, r3 }) do leaks.gone(id) end
leaks.check({ control }, "all woken")
print("ok")
