-- An echo server on copas and LuaSocket (a Lua event-loop peer of
-- net.sh): one coroutine per connection, lines echoed back; prints its
-- address.
--   luajit echo_copas.lua [port]
local copas = require "copas"
local socket = require "socket"
local port = tonumber(arg and arg[1]) or 0
local server = assert(socket.bind("127.0.0.1", port))
local _, p = server:getsockname()
print(("echo server on 127.0.0.1:%d"):format(p))
io.stdout:flush()
copas.addserver(server, function(c)
  c:setoption("tcp-nodelay", true)
  c = copas.wrap(c)
  while true do
    local line = c:receive("*l")
    if not line then break end
    c:send(line .. "\n")
  end
end)
copas.loop()
