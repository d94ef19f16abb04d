-- An echo server on cqueues (a Lua event-loop peer of net.sh): one
-- coroutine per connection, lines echoed back; prints its address.
--   luajit echo_cqueues.lua [port]     (or lua5.4)
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local port = tonumber(arg and arg[1]) or 0
local cq = cqueues.new()
local srv = socket.listen { host = "127.0.0.1", port = port, reuseaddr = true, nodelay = true }
assert(srv:listen())
local _, _, p = srv:localname()
print(("echo server on 127.0.0.1:%d"):format(p))
io.stdout:flush()
cq:wrap(function()
  for con in srv:clients() do
    cq:wrap(function()
      con:setmode("b", "bl")
      for line in con:lines("*l") do
        con:write(line, "\n")
      end
      con:close()
    end)
  end
end)
assert(cq:loop())
