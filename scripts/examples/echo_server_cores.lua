-- An echo server on every core: one actor per P, each with a listener of
-- its own on the same port (net.listen's `reuseport`); the kernel spreads
-- the connections among them. Each serves as echo_server.lua does
-- (echo.lua: one goroutine per connection).
--   lugo scripts/examples/echo_server_cores.lua [port] [actors]
--   (default 7000; 0 = any. Actors: default one per P.)

-- An actor's body captures nothing: it gets the folder of echo.lua, the
-- port, the channel it says "listening" on, and its listener (the first
-- actor's is made before, to learn the port).
local function serve(dir, port, ready, l)
  l = l or assert(net.listen("127.0.0.1:" .. port, { reuseport = true }))
  ready:send(true)
  dofile(dir .. "echo.lua").serve(l)
end

local dir = arg[0]:match("^(.*/)") or "./"
local port = tonumber(arg and arg[1]) or 7000
local n = tonumber(arg and arg[2]) or runtime.gomaxprocs()
local first = assert(net.listen("127.0.0.1:" .. port, { reuseport = true }))
local addr = first:addr()
port = tonumber(addr:match(":(%d+)$"))
local ready = chan(n)
for _ = 2, n do
  actor.spawn(serve, dir, port, ready)
end
for _ = 2, n do
  ready:recv()
end
print(("echo server on %s (%d actors)"):format(addr, n))
io.stdout:flush()
serve(dir, port, ready, first)
