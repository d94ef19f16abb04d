-- An echo server: one goroutine per connection, echoing lines back.
--   lugo scripts/examples/echo_server.lua [port]     (default 7000; 0 = any)
local dir = arg[0]:match("^(.*/)") or "./"
local echo = dofile(dir .. "echo.lua")
local port = tonumber(arg and arg[1]) or 7000
local l = assert(net.listen("127.0.0.1:" .. port))
print("echo server on " .. l:addr())
io.stdout:flush()
echo.serve(l)
