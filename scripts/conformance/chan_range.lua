-- chan_range.lua: for v in ch:range() do ... end receives until closed.

-- values in order, then the loop ends when the channel is closed
local ch = chan()
go(function()
  for i = 1, 10 do ch:send(i) end
  ch:close()
end)
local got = {}
for v in ch:range() do got[#got + 1] = v end
assert(#got == 10, "10 values, got " .. #got)
for i = 1, 10 do assert(got[i] == i) end

-- a closed buffered channel is drained first
local b = chan(5)
for i = 1, 5 do b:send(i * 10) end
b:close()
local sum, count = 0, 0
for v in b:range() do
  sum = sum + v
  count = count + 1
end
assert(count == 5 and sum == 150)

-- a closed empty channel: no iteration at all
local e = chan()
e:close()
for _ in e:range() do error("no value expected") end
local eb = chan(3)
eb:close()
for _ in eb:range() do error("no value expected") end

-- breaking out leaves the remaining values in the channel
local r = chan(10)
for i = 1, 10 do r:send(i) end
r:close()
for v in r:range() do
  if v == 4 then break end
end
assert(r:len() == 6)
assert(r:recv() == 5)
local rest = 0
for v in r:range() do rest = rest + v end
assert(rest == 6 + 7 + 8 + 9 + 10)

-- the loop blocks between values
local slow = chan()
go(function()
  for i = 1, 3 do
    time.sleep(0.005)
    slow:send(i)
  end
  slow:close()
end)
local n = 0
for v in slow:range() do
  n = n + 1
  assert(v == n)
end
assert(n == 3)

-- a pipeline: generate -> square -> sum, each stage a goroutine ranging
-- over its input
local function gen(k)
  local out = chan()
  go(function()
    for i = 1, k do out:send(i) end
    out:close()
  end)
  return out
end
local function sq(input)
  local out = chan(4)
  go(function()
    for v in input:range() do out:send(v * v) end
    out:close()
  end)
  return out
end
local total = 0
for v in sq(sq(gen(20))):range() do total = total + v end
local want = 0
for i = 1, 20 do want = want + i ^ 4 end
assert(total == want, "pipeline sum " .. total .. " want " .. want)

-- several goroutines ranging over one channel share the values
local jobs = chan(8)
local results = chan(100)
local workers = chan()
for w = 1, 4 do
  go(function()
    local c = 0
    for v in jobs:range() do
      results:send(v)
      c = c + 1
    end
    workers:send(c)
  end)
end
for i = 1, 100 do jobs:send(i) end
jobs:close()
local handled = 0
for _ = 1, 4 do handled = handled + workers:recv() end
assert(handled == 100, "every job handled exactly once")
local s = 0
for _ = 1, 100 do s = s + results:recv() end
assert(s == 5050)

-- range inside a goroutine in a nested coroutine
local src = chan()
go(function()
  for i = 1, 3 do src:send(i) end
  src:close()
end)
local gen2 = coroutine.wrap(function()
  for v in src:range() do coroutine.yield(v) end
  return "end"
end)
assert(gen2() == 1 and gen2() == 2 and gen2() == 3 and gen2() == "end")

print("ok")
