-- An echo client: sends lines, prints what comes back.
--   lugo scripts/examples/echo_client.lua host:port [lines...]
local addr = arg and arg[1] or "127.0.0.1:7000"
local c, err = net.dial(addr, 2)
if not c then
  io.stderr:write("dial " .. addr .. ": " .. err .. "\n")
  os.exit(1)
end
c:settimeout(2)
local lines = { table.unpack(arg or {}, 2) }
if #lines == 0 then lines = { "hello", "from", "lugo" } end
for _, line in ipairs(lines) do
  c:write(line .. "\n")
  print(c:readline())
end
c:close()
