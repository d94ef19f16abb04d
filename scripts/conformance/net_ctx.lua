-- sock:setcontext(ctx): a socket's operations end when its context does.
-- A goroutine parked in readline, read, accept or recvfrom wakes with nil
-- and the context's error at once; later operations fail the same way;
-- close still works; setcontext(nil) clears it.

local fails = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua").fails

local bg = context.background()
local l = assert(net.listen("127.0.0.1:0"))
local served = chan(1)
go(function()
  local s = assert(l:accept())
  served:send(s)
end)
local c = assert(net.dial(l:addr()))
local s = served:recv()

-- Parked readers and an acceptor, woken by one cancel.
local ctx, cancel = bg:withcancel()
c:setcontext(ctx)
l:setcontext(ctx)
local u = assert(net.udp("127.0.0.1:0"))
u:setcontext(ctx)
local woke = chan(4)
go(function() woke:send({ c:readline() }) end)
go(function() woke:send({ l:accept() }) end)
go(function() woke:send({ u:recvfrom() }) end)
time.sleep(0.01)
local t0 = time.now()
cancel()
for _ = 1, 3 do
  local r = woke:recv()
  assert(r[1] == nil and r[2] == "context canceled", tostring(r[2]))
end
assert(time.now() - t0 < 0.5)

-- Later operations fail at once, even with data there.
assert(s:write("data\n"))
time.sleep(0.01)
local v, err = c:read()
assert(v == nil and err == "context canceled", tostring(err))
v, err = c:write("x")
assert(v == nil and err == "context canceled")
-- Cleared: the data is still there.
c:setcontext(nil)
assert(c:readline() == "data")

-- A deadline context: "context deadline exceeded".
c:setcontext((bg:withtimeout(0.02)))
v, err = c:readline()
assert(v == nil and err == "context deadline exceeded", tostring(err))
c:setcontext(nil)

-- A context that never ends changes nothing.
c:setcontext(bg)
assert(s:write("more\n"))
assert(c:readline() == "more")

fails(function() c:setcontext(5) end, "conn:setcontext: context expected, got number")
c:close() s:close() l:close() u:close()
print("ok")
