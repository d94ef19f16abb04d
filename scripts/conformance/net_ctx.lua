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

-- net.dial(addr [, timeout] [, ctx]): the context ends a connect still in
-- progress (Go's DialContext). A listener with a backlog of 1 that never
-- accepts leaves later connects pending (its queue is full).
local full = assert(net.listen("127.0.0.1:0", { backlog = 1 }))
local queued = {}
local pending_err
for _ = 1, 8 do
  local ctx, cancel = bg:withtimeout(0.03)
  local conn, e = net.dial(full:addr(), ctx)
  cancel()
  if not conn then pending_err = e break end
  queued[#queued + 1] = conn
end
assert(pending_err == "context deadline exceeded", tostring(pending_err))
-- Cancelled while dialling: the cancel's error, at once.
local dctx, dcancel = bg:withcancel()
go(function() time.sleep(0.01) dcancel() end)
t0 = time.now()
local conn, e = net.dial(full:addr(), 5, dctx)
assert(conn == nil and e == "context canceled", tostring(e))
assert(time.now() - t0 < 1)
-- Ended before: fails without dialling.
conn, e = net.dial(full:addr(), dctx)
assert(conn == nil and e == "context canceled")
-- The timeout still applies beside a context.
conn, e = net.dial(full:addr(), 0.02, bg)
assert(conn == nil and e == "timeout", tostring(e))
for _, q in ipairs(queued) do q:close() end
full:close()
-- A connection made with a context outlives it (the context governs only
-- the dial).
local l2 = assert(net.listen("127.0.0.1:0"))
local ctx2, cancel2 = bg:withcancel()
local c2 = assert(net.dial(l2:addr(), ctx2))
local s2 = assert(l2:accept())
cancel2()
assert(s2:write("after\n"))
assert(c2:readline() == "after")
fails(function() net.dial(l2:addr(), {}) end, "net.dial: timeout or context expected, got table")
fails(function() net.dial(l2:addr(), 1, "x") end, "net.dial: context expected, got string")
c2:close() s2:close() l2:close()
print("ok")
