-- UDP: net.udp binds a socket; sendto/recvfrom carry datagrams with their
-- addresses, connect fixes the peer for send/recv (and filters what is
-- received), deadlines and close wake a parked receiver, a socket moves to
-- another actor, and each misuse raises an error that names it.

local fails = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua").fails

local a = assert(net.udp("127.0.0.1:0"))
local b = assert(net.udp("127.0.0.1:0"))
assert(tostring(a):find("^udp: "), tostring(a))
assert(a:addr():match("^127%.0%.0%.1:%d+$"), a:addr())

-- A datagram and who sent it.
assert(a:sendto("hello", b:addr()) == 5)
local data, from = b:recvfrom()
assert(data == "hello" and from == a:addr(), tostring(data) .. " " .. tostring(from))

-- A count shorter than the datagram: the rest of it is dropped (recv(2)).
assert(a:sendto("abcdef", b:addr()) == 6)
assert(a:sendto("next", b:addr()) == 4)
assert(b:recv(3) == "abc")
assert(b:recv() == "next")

-- A receiver parks until a datagram comes.
local got = chan(1)
go(function() got:send({ b:recvfrom(100) }) end)
assert(a:sendto("later", b:addr()))
local r = got:recv()
assert(r[1] == "later" and r[2] == a:addr())

-- Connected: send/recv with the peer, and only the peer's datagrams.
local c = assert(net.udp("127.0.0.1:0"))
local n, err = c:peer()
assert(n == nil and err == "not connected", tostring(err))
n, err = c:send("nowhere")
assert(n == nil and err ~= nil, "send without a peer fails")
assert(c:connect(a:addr()) == true)
assert(c:peer() == a:addr())
assert(b:sendto("not from the peer", c:addr()))
assert(a:sendto("from the peer", c:addr()))
assert(c:recv() == "from the peer")
assert(c:send("to the peer") == 11)
data, from = a:recvfrom()
assert(data == "to the peer" and from == c:addr())

-- Deadlines.
c:settimeout(0.02)
n, err = c:recv()
assert(n == nil and err == "timeout", tostring(err))
c:settimeout(nil)

-- Too large for one datagram.
n, err = a:sendto(("x"):rep(70000), b:addr())
assert(n == nil and err == "message too long", tostring(err))

-- A close wakes a parked receiver with "closed".
local woke = chan(1)
go(function() woke:send({ c:recv() }) end)
time.sleep(0.01)
c:close()
r = woke:recv()
assert(r[1] == nil and r[2] == "closed", tostring(r[2]))
n, err = c:send("x")
assert(n == nil and err == "closed")

-- Moved to another actor: it receives there; the old handle raises.
local baddr = b:addr()
local h = actor.spawn(function(u)
  local d, at = assert(u:recvfrom())
  assert(u:sendto("echo " .. d, at))
  u:close()
end, b)
assert(a:sendto("ping", baddr))
assert(a:recv() == "echo ping")
assert(h:wait())
fails(function() b:recv() end, "udp:recv: use of a moved connection")

-- Misuse.
fails(function() net.udp(5) end, "net.udp: address must be a string, got number")
fails(function() a:sendto(nil, baddr) end, "udp:sendto: data must be a string, got nil")
fails(function() a:sendto("x") end, "udp:sendto: address must be a string, got no value")
fails(function() a:send({}) end, "udp:send: data must be a string, got table")
fails(function() a:recv(0) end, "udp:recv: count must be a positive integer")
fails(function() a:connect() end, "udp:connect: address must be a string, got no value")
fails(function() a:read() end, "conn:read: read on a UDP socket")
fails(function() a:accept() end, "listener:accept: accept on a UDP socket")
n, err = a:sendto("x", "nope")
assert(n == nil and err:find("^invalid address 'nope'"), tostring(err))
local l = assert(net.listen("127.0.0.1:0"))
fails(function() l:recv() end, "udp:recv: recv on a listener")
fails(function() a.recv(l) end, "udp:recv: recv on a listener")
l:close()
a:close()
print("ok")
