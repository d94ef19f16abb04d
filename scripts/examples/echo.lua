-- The echo service of the example servers (echo_server.lua,
-- echo_server_cores.lua): one goroutine per connection, each line sent
-- back. Load it with dofile: `local echo = dofile(dir .. "echo.lua")`.
local echo = {}

-- Sends each line of connection `c` back until its peer is done, then
-- closes it.
function echo.conn(c)
  while true do
    local line = c:readline()
    if not line then break end
    if not c:write(line .. "\n") then break end
  end
  c:close()
end

-- Accepts on listener `l`, a goroutine per connection, until accept
-- fails (it says why).
function echo.serve(l)
  while true do
    local c, err = l:accept()
    if not c then
      print("accept: " .. err)
      return
    end
    go(echo.conn, c)
  end
end

return echo
