-- chan_close.lua: closing channels.

local function has(err, needle)
  return string.find(tostring(err), needle, 1, true) ~= nil
end

-- receivers drain the buffer, then get nil, false forever
local ch = chan(3)
ch:send(1)
ch:send(2)
ch:close()
assert(ch:len() == 2, "close keeps buffered values")
assert(ch:cap() == 3)
local v, ok = ch:recv()
assert(v == 1 and ok == true)
v, ok = ch:recv()
assert(v == 2 and ok == true)
for _ = 1, 3 do
  local n = select("#", ch:recv())
  assert(n == 2, "recv on a closed channel returns 2 values")
  v, ok = ch:recv()
  assert(v == nil and ok == false, "closed and drained: nil, false")
end
assert(ch:len() == 0)

-- a buffered nil is told apart from closed
local cn = chan(1)
cn:send(nil)
cn:close()
v, ok = cn:recv()
assert(v == nil and ok == true)
v, ok = cn:recv()
assert(v == nil and ok == false)

-- send on a closed channel raises an error
local ok2, err = pcall(ch.send, ch, 3)
assert(not ok2, "send on a closed channel fails")
assert(has(err, "send on closed channel"), "message: " .. tostring(err))
ok2, err = pcall(function() chan(0):close() end)
assert(ok2, "closing a fresh channel is fine: " .. tostring(err))
local u = chan()
u:close()
ok2, err = pcall(u.send, u, nil)
assert(not ok2 and has(err, "send on closed channel"), tostring(err))

-- close of a closed channel raises an error
ok2, err = pcall(ch.close, ch)
assert(not ok2, "close of a closed channel fails")
assert(has(err, "close of closed channel"), "message: " .. tostring(err))
ok2, err = pcall(function() u:close() end)
assert(not ok2 and has(err, "close of closed channel"), tostring(err))

-- close wakes every blocked receiver with nil, false
local c = chan()
local res = chan(5)
for _ = 1, 5 do
  go(function()
    local rv, rok = c:recv()
    res:send({ rv, rok })
  end)
end
time.sleep(0.01)
c:close()
for _ = 1, 5 do
  local r = res:recv()
  assert(r[1] == nil and r[2] == false, "woken by close: nil, false")
end

-- close wakes a receiver blocked in select
local cs = chan()
go(function()
  local i, sv, sok = chan.select({ "recv", chan() }, { "recv", cs })
  res:send({ i, sv, sok })
end)
time.sleep(0.01)
cs:close()
local r = res:recv()
assert(r[1] == 2 and r[2] == nil and r[3] == false)

-- a sender blocked on a channel that gets closed gets the error
-- "send on closed channel", catchable with pcall in its own goroutine
local cb = chan()
go(function()
  local sok, serr = pcall(cb.send, cb, "never delivered")
  res:send({ sok, tostring(serr) })
end)
time.sleep(0.02)
cb:close()
r = res:recv()
assert(r[1] == false, "the blocked send fails")
assert(has(r[2], "send on closed channel"), "message: " .. r[2])

-- the same for senders blocked on a full buffered channel
local full = chan(1)
full:send("kept")
for _ = 1, 3 do
  go(function()
    local sok, serr = pcall(function() full:send("blocked") end)
    res:send({ sok, tostring(serr) })
  end)
end
time.sleep(0.02)
full:close()
for _ = 1, 3 do
  r = res:recv()
  assert(r[1] == false and has(r[2], "send on closed channel"), r[2])
end
v, ok = full:recv()
assert(v == "kept" and ok == true, "the value buffered before close survives")
v, ok = full:recv()
assert(v == nil and ok == false)

-- the goroutine goes on after catching the error
local after = chan()
go(function()
  pcall(cb.send, cb, 1)
  after:send("went on")
end)
assert(after:recv() == "went on")

-- close from another goroutine, seen by main
local remote = chan()
go(function() remote:close() end)
v, ok = remote:recv()
assert(v == nil and ok == false)

-- closing a channel is a broadcast usable as a "done" signal
local quit = chan()
local stopped = chan(10)
for i = 1, 10 do
  go(function()
    quit:recv()
    stopped:send(i)
  end)
end
quit:close()
local sum = 0
for _ = 1, 10 do sum = sum + stopped:recv() end
assert(sum == 55)

print("ok")
