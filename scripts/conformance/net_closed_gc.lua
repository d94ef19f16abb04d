-- net_closed_gc.lua: the failures of a closed socket's methods are their
-- documented results (`nil, "closed"`), also when the collector runs a
-- finalizer that uses the same socket while the method is failing (in
-- the push of its message). The socket's lock must be gone by then: a
-- finalizer calling `conn:addr()` inside a failing `conn:write()` would
-- otherwise wait for a lock its own M holds, and the script would hang.
--
-- How the finalizer is made to run inside the method: the collector is
-- stopped while finalizable garbage is made, restarted (its debt is 0),
-- then `table.move` grows a table, which allocates without checking the
-- collector's debt. The next check is in the method's push of its result
-- (`lua_pushlstring`), and the debt is large enough for a whole cycle
-- there (incremental mode): it reaches the finalizers. Each finalizer
-- records whether the method was on the stack; the script checks that at
-- least one was (the path was reached), for each method.

collectgarbage("incremental")

local l = assert(net.listen("127.0.0.1:0"))
local accepted = chan(1)
go(function() accepted:send((l:accept())) end)
local conn = assert(net.dial(l:addr()))
local server = assert(accepted:recv())
local laddr = l:addr()

-- What they return while open.
assert(conn:write("hello\n") == 6)
assert(server:readline() == "hello")
assert(conn:addr():match("^127%.0%.0%.1:%d+$"))
assert(conn:peer() == laddr)

conn:close()
l:close()

-- Without collector pressure first: the documented failures.
local function check_closed(what, v, err)
  assert(v == nil and err == "closed", what .. ": " .. tostring(v) .. ", " .. tostring(err))
end
check_closed("write", conn:write("x"))
check_closed("write of a number", conn:write(42))
check_closed("read", conn:read())
check_closed("readline", conn:readline())
check_closed("addr", conn:addr())
check_closed("peer", conn:peer())
check_closed("accept", l:accept())
check_closed("listener addr", l:addr())
conn:close() -- closing twice is fine
assert(conn:settimeout(1) == nil)

-- Kept alive: `table.move` copies it into a fresh table.
local src = {}
for i = 1, 50000 do src[i] = i end

-- Calls `method(sock, ...)` with finalizers due in it; each finalizer
-- calls `touch:addr()` (the same closed socket). Returns the method's
-- results and what the finalizers saw.
local function under_finalizers(touch, method, sock, ...)
  local seen = {}
  collectgarbage()
  collectgarbage("stop")
  for _ = 1, 40 do
    setmetatable({}, { __gc = function()
      local inside = false
      for level = 2, 40 do
        local info = debug.getinfo(level, "f")
        if not info then break end
        if info.func == method then inside = true break end
      end
      local v, err = touch:addr()
      seen[#seen + 1] = { inside = inside, v = v, err = err }
    end })
  end
  local dst = {}
  collectgarbage("restart")
  table.move(src, 1, #src, 1, dst)
  return seen, method(sock, ...)
end

local function check_method(what, touch, method, sock, ...)
  local reached = 0
  for _ = 1, 5 do
    local seen, v, err = under_finalizers(touch, method, sock, ...)
    check_closed(what, v, err)
    collectgarbage() -- the finalizers that did not run inside run now
    assert(#seen > 0, what .. ": no finalizer ran")
    for _, s in ipairs(seen) do
      check_closed(what .. " (the finalizer's addr)", s.v, s.err)
      if s.inside then reached = reached + 1 end
    end
  end
  assert(reached > 0, what .. ": no finalizer ran inside the method")
end

check_method("write", conn, conn.write, conn, "x")
check_method("write of a number", conn, conn.write, conn, 42)
check_method("read", conn, conn.read, conn)
check_method("readline", conn, conn.readline, conn)
check_method("addr", conn, conn.addr, conn)
check_method("peer", conn, conn.peer, conn)
check_method("accept", l, l.accept, l)

-- The other end is still usable, and sees the end of the stream.
local v, err = server:read()
assert(v == nil and err == "eof", tostring(err))
server:close()

print("ok")
