-- An echo server: one goroutine per connection, echoing lines back.
--   lugo scripts/examples/echo_server.lua [port]     (default 7000; 0 = any)
local port = tonumber(arg and arg[1]) or 7000
local l = assert(net.listen("127.0.0.1:" .. port))
print("echo server on " .. l:addr())
io.stdout:flush()
while true do
  local c, err = l:accept()
  if not c then
    print("accept: " .. err)
    break
  end
  go(function()
    while true do
      local line = c:readline()
      if not line then break end
      if not c:write(line .. "\n") then break end
    end
    c:close()
  end)
end
