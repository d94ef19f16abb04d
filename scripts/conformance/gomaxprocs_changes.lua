-- gomaxprocs_changes.lua: changing the number of Ps while goroutines run,
-- sleep and hand values over must lose nothing (no lost timer, no false
-- deadlock, no lost wake-up).
local start = runtime.gomaxprocs()
for i = 1, 300 do
  local old = runtime.gomaxprocs(i % 3 + 1)
  assert(math.type(old) == "integer" and old >= 1)
  if i % 2 == 0 then time.sleep(0.0002) end
  local c = chan()
  go(function() c:send(i) end)
  assert(c:recv() == i)
end
assert(runtime.gomaxprocs() == 300 % 3 + 1)
runtime.gomaxprocs(1)
time.sleep(0.005)
assert(runtime.gomaxprocs(start) == 1)
print("ok")
