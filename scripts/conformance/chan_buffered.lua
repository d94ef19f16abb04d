-- chan_buffered.lua: buffered channels are FIFO queues of fixed capacity.

local ch = chan(3)
assert(ch:cap() == 3)
assert(ch:len() == 0)

-- sends up to the capacity do not block (main is alone: a block would be
-- a deadlock)
ch:send(1)
assert(ch:len() == 1)
ch:send(2)
ch:send(3)
assert(ch:len() == 3)
assert(ch:cap() == 3, "cap does not change")

-- FIFO
local v, ok = ch:recv()
assert(v == 1 and ok == true)
assert(ch:len() == 2)
assert(ch:recv() == 2)
assert(ch:recv() == 3)
assert(ch:len() == 0)

-- interleaved sends and receives keep FIFO order
for i = 1, 10 do
  ch:send(i)
  ch:send(i + 100)
  assert(ch:recv() == i)
  assert(ch:recv() == i + 100)
end
assert(ch:len() == 0)

-- nil and false are buffered like other values
ch:send(nil)
ch:send(false)
ch:send(nil)
assert(ch:len() == 3)
v, ok = ch:recv()
assert(v == nil and ok == true)
v, ok = ch:recv()
assert(v == false and ok == true)
v, ok = ch:recv()
assert(v == nil and ok == true)

-- a send on a full channel blocks until a receive makes room
local progress = 0
local done = chan()
go(function()
  for i = 1, 4 do
    ch:send(i)
    progress = i
  end
  done:send(true)
end)
for _ = 1, 20 do runtime.gosched() end
time.sleep(0.02)
assert(progress == 3, "the 4th send blocks on a full channel, progress " .. progress)
assert(ch:len() == 3)
assert(ch:recv() == 1)
done:recv()
assert(progress == 4)
assert(ch:len() == 3)
for i = 2, 4 do assert(ch:recv() == i) end

-- a receive on an empty buffered channel blocks until a send
local got
go(function()
  got = ch:recv()
  done:send(true)
end)
for _ = 1, 20 do runtime.gosched() end
time.sleep(0.02)
assert(got == nil, "recv on an empty buffered channel blocks")
ch:send("late")
done:recv()
assert(got == "late")

-- producer/consumer through a small buffer: order preserved
local pipe = chan(10)
go(function()
  for i = 1, 2000 do pipe:send(i) end
end)
for i = 1, 2000 do
  local x = pipe:recv()
  assert(x == i, "FIFO: expected " .. i .. " got " .. tostring(x))
end

-- several producers: each producer's values stay in its order
local multi = chan(5)
for p = 1, 4 do
  go(function()
    for m = 1, 100 do multi:send({ p, m }) end
  end)
end
local last = {}
for _ = 1, 400 do
  local x = multi:recv()
  assert((last[x[1]] or 0) + 1 == x[2], "producer order kept")
  last[x[1]] = x[2]
end

-- capacity 1
local one = chan(1)
assert(one:cap() == 1)
one:send("a")
assert(one:len() == 1)
assert(one:recv() == "a")

-- a large buffer
local big = chan(10000)
for i = 1, 10000 do big:send(i) end
assert(big:len() == 10000)
for i = 1, 10000 do assert(big:recv() == i) end
assert(big:len() == 0)

-- tables are passed by reference
local t = {}
one:send(t)
assert(one:recv() == t)

-- numbers keep their subtype: a float with an integral value stays a float
one:send(7.0)
assert(math.type(one:recv()) == "float")
one:send(7)
assert(math.type(one:recv()) == "integer")

print("ok")
