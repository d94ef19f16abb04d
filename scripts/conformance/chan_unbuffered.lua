-- chan_unbuffered.lua: unbuffered channels are a rendezvous.

local ch = chan()
assert(ch:cap() == 0, "chan() is unbuffered")
assert(ch:len() == 0)
assert(chan(0):cap() == 0, "chan(0) is unbuffered")

-- a receive gets what was sent, and recv returns exactly (v, true)
go(function() ch:send(42) end)
assert(ch:recv() == 42)
go(function() ch:send(43) end)
local n = select("#", ch:recv())
assert(n == 2, "recv returns 2 values, got " .. n)
go(function() ch:send("hello") end)
local v, ok = ch:recv()
assert(v == "hello" and ok == true)

-- the sender stays blocked until a receiver takes the value
local sent = false
local finished = chan(1)
go(function()
  ch:send("x")
  sent = true
  finished:send(true)
end)
for _ = 1, 20 do runtime.gosched() end
time.sleep(0.02)
assert(not sent, "an unbuffered send does not complete without a receiver")
assert(ch:len() == 0, "an unbuffered channel never holds values")
assert(ch:recv() == "x")
finished:recv()
assert(sent)

-- the receiver stays blocked until a sender comes
local got
go(function()
  got = ch:recv()
  finished:send(true)
end)
for _ = 1, 20 do runtime.gosched() end
time.sleep(0.02)
assert(got == nil, "an unbuffered receive does not complete without a sender")
ch:send("y")
finished:recv()
assert(got == "y")

-- nil is a value like any other
go(function() ch:send(nil) end)
v, ok = ch:recv()
assert(v == nil and ok == true, "send(nil) is received as nil, true")

-- false, numbers, strings, tables (by reference), functions, channels
local t = {}
local f = function() return "f" end
local inner = chan(1)
local values = { false, 0, -1.5, math.maxinteger, "", "str", t, f, inner }
go(function()
  for i = 1, #values do ch:send(values[i]) end
end)
for i = 1, #values do
  local got_v, got_ok = ch:recv()
  assert(got_ok == true)
  assert(got_v == values[i], "value " .. i .. " came through unchanged")
  assert(math.type(got_v) == math.type(values[i]), "number subtype kept")
end

-- a channel of channels: reply channels
inner:send("via inner")
local req = chan()
go(function()
  local reply = req:recv()
  reply:send("pong")
end)
local reply = chan()
req:send(reply)
assert(reply:recv() == "pong")
local iv = inner:recv()
assert(iv == "via inner")

-- ping-pong: 2000 round trips, in order
local ping, pong = chan(), chan()
go(function()
  for _ = 1, 2000 do pong:send(ping:recv() + 1) end
end)
for i = 1, 2000 do
  ping:send(i)
  assert(pong:recv() == i + 1)
end

-- many senders, one receiver: every value arrives exactly once
local c = chan()
local S, M = 10, 50
for s = 1, S do
  go(function()
    for m = 1, M do c:send(s * 1000 + m) end
  end)
end
local seen, last = {}, {}
for _ = 1, S * M do
  local x = c:recv()
  assert(not seen[x], "duplicate value " .. x)
  seen[x] = true
  -- each sender's values arrive in the order it sent them
  local s, m = x // 1000, x % 1000
  assert((last[s] or 0) < m, "sender " .. s .. "'s values arrive in order")
  last[s] = m
end
for s = 1, S do assert(last[s] == M) end

-- one sender, many receivers: every value is received exactly once
local work = chan()
local out = chan(100)
for _ = 1, 10 do
  go(function()
    while true do
      local w, wok = work:recv()
      if not wok then break end
      out:send(w)
    end
  end)
end
for i = 1, 100 do work:send(i) end
work:close()
local total = 0
for _ = 1, 100 do total = total + out:recv() end
assert(total == 5050)

print("ok")
