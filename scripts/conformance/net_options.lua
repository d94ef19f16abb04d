-- net.listen's options (reuseport, backlog), a connection's options
-- (setnodelay, setkeepalive), a half close (shutdown), a listener used as
-- a connection, and net.lookup: each checked here, with the error a bad
-- argument raises.

local fails = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua").fails

local l = assert(net.listen("127.0.0.1:0", { reuseport = true, backlog = 16 }))
local addr = l:addr()
local port = addr:match(":(%d+)$")

-- A second listener on the same port: allowed when both ask for reuseport
-- (the kernel spreads connections among them); without it, the port is taken.
local l2 = assert(net.listen("127.0.0.1:" .. port, { reuseport = true }))
l2:close()
local none, err = net.listen("127.0.0.1:" .. port)
assert(none == nil and err == "address already in use", tostring(err))

-- Bad options.
fails(function() net.listen("127.0.0.1:0", 5) end, "net.listen: options must be a table, got number")
fails(function() net.listen("127.0.0.1:0", { reuseport = 1 }) end,
  "net.listen: reuseport must be a boolean, got number")
fails(function() net.listen("127.0.0.1:0", { backlog = 0 }) end,
  "net.listen: backlog must be 1 to 65535, got 0")
fails(function() net.listen("127.0.0.1:0", { backlog = "x" }) end,
  "net.listen: backlog must be an integer, got string")
fails(function() net.listen("127.0.0.1:0", { nodelay = true }) end,
  "net.listen: unknown option 'nodelay' (reuseport, backlog)")

-- A listener used as a connection.
fails(function() l:read() end, "conn:read: read on a listener")
fails(function() l:readline() end, "conn:readline: readline on a listener")
fails(function() l:write("x") end, "conn:write: write on a listener")
fails(function() l:setnodelay(true) end, "conn:setnodelay: setnodelay on a listener")
fails(function() l:setkeepalive(true) end, "conn:setkeepalive: setkeepalive on a listener")
fails(function() l:shutdown() end, "conn:shutdown: shutdown on a listener")

-- The server reads to the end of what the client sends (its half close),
-- then answers on its own half, still open.
local served = chan()
go(function()
  local c = assert(l:accept())
  fails(function() c:accept() end, "listener:accept: accept on a connection")
  local got = {}
  while true do
    local s, e = c:read(100)
    if not s then assert(e == "eof", e) break end
    got[#got + 1] = s
  end
  assert(c:write("got " .. table.concat(got)))
  c:close()
  served:send(true)
end)

local c = assert(net.dial(addr))
assert(c:setnodelay(false) == true)
assert(c:setnodelay(true) == true)
assert(c:setkeepalive(true) == true)
assert(c:setkeepalive(30) == true)
assert(c:setkeepalive(false) == true)
fails(function() c:setkeepalive(0) end, "conn:setkeepalive: period must be at least 1 second")
fails(function() c:setkeepalive("on") end,
  "conn:setkeepalive: on must be a boolean or a period in seconds, got string")
fails(function() c:setnodelay("yes") end, "conn:setnodelay: on must be a boolean, got string")
fails(function() c:shutdown("x") end, 'conn:shutdown: how must be "r", "w" or "rw", got "x"')
fails(function() c:shutdown(1) end, "conn:shutdown: how must be a string, got number")

assert(c:write("hello"))
assert(c:shutdown("w") == true)
local answer = {}
while true do
  local s, e = c:read(100)
  if not s then assert(e == "eof", e) break end
  answer[#answer + 1] = s
end
assert(table.concat(answer) == "got hello", table.concat(answer))
assert(served:recv())
c:close()
local r, e = c:setnodelay(true)
assert(r == nil and e == "closed", tostring(e))

-- readall(n): exactly n bytes; read("a") / readall(): all up to the end;
-- a stream that ends first gives nil, "eof" and what came.
go(function()
  local c = assert(l:accept())
  assert(c:write("0123"))
  time.sleep(0.01) -- the reader waits for the rest
  assert(c:write("456789"))
  c:close()
end)
c = assert(net.dial(addr))
assert(c:readall(6) == "012345")
assert(c:read("a") == "6789")
local none, why, partial = c:readall(1)
assert(none == nil and why == "eof" and partial == "", tostring(why))
c:close()
go(function()
  local c = assert(l:accept())
  assert(c:write("abc"))
  c:close()
end)
c = assert(net.dial(addr))
none, why, partial = c:readall(20)
assert(none == nil and why == "eof" and partial == "abc", tostring(partial))
c:close()
fails(function() c:read("l") end, 'conn:read: format must be "a" or a count, got "l"')
fails(function() c:readall(-1) end, "conn:readall: count must be a positive integer")
fails(function() l:readall() end, "conn:readall: readall on a listener")
l:close()

-- net.lookup: a name's addresses (a blocking call), an address as itself.
local ips = assert(net.lookup("localhost"))
local has = false
for _, ip in ipairs(ips) do has = has or ip == "127.0.0.1" or ip == "::1" end
assert(has, table.concat(ips, " "))
assert(net.lookup("127.0.0.1")[1] == "127.0.0.1")
assert(#net.lookup("::1") == 1)
fails(function() net.lookup(5) end, "net.lookup: host must be a string, got number")
print("ok")
