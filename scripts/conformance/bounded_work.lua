-- bounded_work.lua: operations whose cost was quadratic are linear (or
-- n log n) and bounded (issue "Sound and bounded", item 5). The sizes make
-- the old costs blow the harness's time limit (a 100k-case select took
-- 18.5 s; this one has 200k cases, twice).

-- select over 200k channels: one ready case, found at once
local N = 200000
local cases, chans = {}, {}
for i = 1, N do
  chans[i] = chan(1)
  cases[i] = { "recv", chans[i] }
end
chans[N]:send("last")
local i, v, ok = chan.select(table.unpack(cases))
assert(i == N and v == "last" and ok)

-- ... and parked on all of them, woken by one
local done = chan()
go(function()
  local i, v = chan.select(table.unpack(cases))
  done:send({ i, v })
end)
runtime.gosched()
chans[7]:send("seven")
local r = done:recv()
assert(r[1] == 7 and r[2] == "seven")

-- copying a deep value: a documented depth, a clear error past it
local function nest(n)
  local t = {}
  for _ = 1, n do t = { t } end
  return t
end
local c = chan(1)
actor.spawn(function() end, c):wait() -- c is shared: sends copy
c:send(nest(999)) -- 1000 tables
assert(c:recv())
local ok2, err = pcall(c.send, c, nest(25000))
assert(not ok2 and err:find("value too deep at msg%[1%]%[1%]") and err:find("more than 1000 nested tables"), err)

-- readline scans each byte once, and stops at its limit
local ls = assert(net.listen("127.0.0.1:0"))
go(function()
  local conn = assert(ls:accept())
  -- a 512 KB line in 1 KB pieces, then a 2 MB line without end
  local piece = ("a"):rep(1024)
  for _ = 1, 512 do conn:write(piece) end
  conn:write("\n")
  local big = ("b"):rep(1 << 20)
  conn:write(big) conn:write(big)
  conn:close()
end)
local conn = assert(net.dial(ls:addr()))
local line = assert(conn:readline())
assert(#line == 512 * 1024)
local none, why = conn:readline()
assert(none == nil and why == "line too long", tostring(why))
-- a limit of its own
local more, why2 = conn:readline(64)
assert(more == nil and why2 == "line too long")
-- the bytes are still there to read
assert(#conn:read(10) == 10)
conn:close()
ls:close()

print("ok")
