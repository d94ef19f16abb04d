-- net_tcp.lua: TCP over loopback: an echo server and its clients in one
-- script, timeouts, close from another goroutine, errors as `nil, message`.

local l = assert(net.listen("127.0.0.1:0"))
local addr = l:addr()
assert(addr:match("^127%.0%.0%.1:%d+$"), addr)

-- echo server: one goroutine per connection
go(function()
  while true do
    local c = l:accept()
    if not c then return end
    go(function()
      while true do
        local line = c:readline()
        if not line then c:close() return end
        assert(c:write(line .. "\n") == #line + 1)
      end
    end)
  end
end)

-- several clients at once
local results = chan(10)
for k = 1, 10 do
  go(function()
    local c = assert(net.dial(addr))
    local ok = true
    for i = 1, 20 do
      local msg = ("client %d line %d"):format(k, i)
      c:write(msg .. "\n")
      ok = ok and c:readline() == msg
    end
    c:close()
    results:send(ok)
  end)
end
for _ = 1, 10 do assert(results:recv() == true) end

-- read(n), large writes, eof
local c = assert(net.dial(addr))
assert(c:peer() == addr)
local big = ("x"):rep(200000) .. "\n"
go(function() assert(c:write(big) == #big) end)
assert(c:readline() == big:sub(1, -2))
c:write("abc\n")
assert(c:read(2) == "ab")
assert(c:read() == "c\n")

-- timeout on a read nobody answers
c:settimeout(0.03)
local t0 = time.now()
local v, err = c:read()
assert(v == nil and err == "timeout", tostring(err))
assert(time.now() - t0 >= 0.029)
c:settimeout(nil)

-- close from another goroutine wakes the reader with "closed"
local woke = chan(1)
go(function() woke:send({ c:read() }) end)
time.sleep(0.01)
c:close()
local r = woke:recv()
assert(r[1] == nil and r[2] == "closed", tostring(r[2]))
assert(select(2, c:read()) == "closed")

-- the server side sees eof when a client closes
local eofs = chan(1)
local l2 = assert(net.listen("127.0.0.1:0"))
go(function()
  local s = l2:accept()
  eofs:send({ s:read() })
end)
local c2 = assert(net.dial(l2:addr()))
c2:close()
local e = eofs:recv()
assert(e[1] == nil and e[2] == "eof", tostring(e[2]))

-- IPv6 loopback and localhost
local l6 = net.listen("[::1]:0")
if l6 then
  go(function() local s = l6:accept() s:write("six\n") end)
  local c6 = assert(net.dial(l6:addr()))
  assert(c6:readline() == "six")
  l6:close()
end
local lh = assert(net.listen("localhost:0"))
go(function() local s = lh:accept() s:write("local\n") end)
local ch = assert(net.dial("localhost:" .. lh:addr():match(":(%d+)$")))
assert(ch:readline() == "local")

-- errors: results for I/O failures, Lua errors for wrong arguments
local v2, e2 = net.dial("127.0.0.1:1")
assert(v2 == nil and e2 == "connection refused", tostring(e2))
assert(net.listen("127.0.0.1:99999") == nil)
assert(net.listen("not an address") == nil)
assert(select(2, net.listen(addr)) == "address already in use")
assert(not pcall(net.listen, 42))
assert(not pcall(net.dial, {}))
assert(not pcall(c.read, c, -1))
assert(not pcall(c.write, c, {}))

-- The last line and the end of the stream often come in one poller
-- event: after the line (a short read), the end is still read, not
-- waited for (a read is skipped only when nothing can be there).
for i = 1, 20 do
  local got = chan(1)
  go(function()
    local sc = assert(l:accept())
    local line = sc:readline()
    local none, why = sc:readline()
    sc:close()
    got:send({ line, none, why })
  end)
  local cc = assert(net.dial(addr))
  assert(cc:write("last " .. i .. "\n"))
  cc:close()
  local r = got:recv()
  assert(r[1] == "last " .. i and r[2] == nil and r[3] == "eof", tostring(r[3]))
end

l:close()
assert(select(2, l:accept()) == "closed")
print("ok")
