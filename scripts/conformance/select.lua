-- select.lua: chan.select over several channel operations.

-- a ready recv case: index, value, ok
local a, b = chan(1), chan(1)
a:send("A")
local n = select("#", chan.select({ "recv", a }, { "recv", b }))
assert(n == 3, "a recv case returns index, value, ok (" .. n .. " values)")
a:send("A")
local i, v, ok = chan.select({ "recv", a }, { "recv", b })
assert(i == 1 and v == "A" and ok == true)
b:send("B")
i, v, ok = chan.select({ "recv", a }, { "recv", b })
assert(i == 2 and v == "B" and ok == true)

-- a ready send case: its index
i = chan.select({ "recv", a }, { "send", b, "sent" })
assert(i == 2)
assert(b:recv() == "sent")

-- nil values through select
b:send(nil)
n = select("#", chan.select({ "recv", b }))
assert(n == 3)
b:send(nil)
i, v, ok = chan.select({ "recv", b })
assert(i == 1 and v == nil and ok == true)
i = chan.select({ "send", b, nil })
assert(i == 1)
v, ok = b:recv()
assert(v == nil and ok == true, "select sent nil")

-- blocking select woken by a sender
local x, y = chan(), chan()
go(function() y:send("hello") end)
i, v, ok = chan.select({ "recv", x }, { "recv", y })
assert(i == 2 and v == "hello" and ok == true)

-- blocking select woken by a receiver (send case)
local got = chan(1)
go(function() got:send((x:recv())) end)
i = chan.select({ "recv", y }, { "send", x, "to x" })
assert(i == 2)
assert(got:recv() == "to x")

-- once a select has run one case, it no longer waits on the others
local p, q = chan(), chan()
local res = chan(1)
go(function() res:send((chan.select({ "recv", p }, { "recv", q }))) end)
p:send(1) -- completes only when the select takes it
assert(chan.select({ "send", q, 2 }, { "default" }) == 2,
  "a finished select must not receive from its other channels")
assert(res:recv() == 1)
local p2 = chan()
go(function() res:send((chan.select({ "send", p2, "v" }, { "send", q, "w" }))) end)
assert(p2:recv() == "v")
assert(chan.select({ "recv", q }, { "default" }) == 2,
  "a finished select must not send on its other channels")
assert(res:recv() == 1)

-- handler functions
local c = chan(1)
c:send(21)
local ri, r1, r2 = chan.select({ "recv", c, function(hv, hok)
  assert(hv == 21 and hok == true)
  return hv * 2, "second"
end })
assert(ri == 1 and r1 == 42 and r2 == "second", "select returns index then handler results")
local nargs
ri, r1 = chan.select({ "recv", chan() }, { "send", c, "s", function(...)
  nargs = select("#", ...)
  return "sent!"
end })
assert(ri == 2 and r1 == "sent!")
assert(nargs == 0, "a send handler is called with no arguments")
assert(c:recv() == "s")
c:send(1)
n = select("#", chan.select({ "recv", c, function() end }))
assert(n == 1, "a handler returning nothing: select returns only the index")
-- handler on a closed channel
local closed = chan()
closed:close()
ri, r1, r2 = chan.select({ "recv", closed, function(hv, hok) return hv, hok end })
assert(ri == 1 and r1 == nil and r2 == false)
-- handler of a blocking select runs after the wake-up
go(function() c:send("late") end)
ri, r1 = chan.select({ "recv", x }, { "recv", c, function(hv) return "got " .. hv end })
assert(ri == 2 and r1 == "got late")

-- a recv case on a closed channel is ready: nil, false
i, v, ok = chan.select({ "recv", chan() }, { "recv", closed })
assert(i == 2 and v == nil and ok == false)
-- a closed buffered channel gives its values first
local cb = chan(2)
cb:send("left")
cb:close()
i, v, ok = chan.select({ "recv", cb })
assert(i == 1 and v == "left" and ok == true)
i, v, ok = chan.select({ "recv", cb })
assert(i == 1 and v == nil and ok == false)

-- a send case on a closed channel raises "send on closed channel"
local sok, serr = pcall(chan.select, { "send", closed, 1 })
assert(not sok and string.find(tostring(serr), "send on closed channel", 1, true),
  tostring(serr))

-- a select blocked on a channel that gets closed wakes with nil, false
local willclose = chan()
go(function()
  time.sleep(0.01)
  willclose:close()
end)
i, v, ok = chan.select({ "recv", chan() }, { "recv", willclose })
assert(i == 2 and v == nil and ok == false)

-- the same channel twice in one select
local same = chan(1)
same:send(7)
i, v, ok = chan.select({ "recv", same }, { "recv", same })
assert((i == 1 or i == 2) and v == 7 and ok == true)
i = chan.select({ "send", same, 1 }, { "send", same, 2 })
v = same:recv()
assert((i == 1 and v == 1) or (i == 2 and v == 2), "the case that ran sent its value")
local su = chan()
go(function() su:send("w") end)
i, v, ok = chan.select({ "recv", su }, { "recv", su })
assert((i == 1 or i == 2) and v == "w" and ok == true)
-- recv and send on the same buffered channel: only the send is ready
local rs = chan(1)
i = chan.select({ "recv", rs }, { "send", rs, "x" })
assert(i == 2 and rs:recv() == "x")

-- uniform random choice among ready cases (loosely: 1000 selects over two
-- always-ready channels, each chosen at least 300 times)
local c1, c2 = chan(1), chan(1)
c1:send(true)
c2:send(true)
local counts = { 0, 0 }
for _ = 1, 1000 do
  local k = chan.select({ "recv", c1 }, { "recv", c2 })
  counts[k] = counts[k] + 1
  if k == 1 then c1:send(true) else c2:send(true) end
end
assert(counts[1] >= 300 and counts[2] >= 300,
  "recv cases chosen " .. counts[1] .. " and " .. counts[2] .. " times")
-- the same with send cases
local s1, s2 = chan(1), chan(1)
counts = { 0, 0 }
for _ = 1, 1000 do
  local k = chan.select({ "send", s1, 1 }, { "send", s2, 2 })
  counts[k] = counts[k] + 1
  assert((k == 1 and s1 or s2):recv() == k)
end
assert(counts[1] >= 300 and counts[2] >= 300,
  "send cases chosen " .. counts[1] .. " and " .. counts[2] .. " times")
-- three cases, the first not ready
local t1, t2 = chan(1), chan(1)
t1:send(1)
t2:send(2)
counts = { 0, 0, 0 }
for _ = 1, 900 do
  local k = chan.select({ "recv", chan() }, { "recv", t1 }, { "recv", t2 })
  counts[k] = counts[k] + 1
  if k == 2 then t1:send(1) else t2:send(2) end
end
assert(counts[1] == 0 and counts[2] >= 250 and counts[3] >= 250,
  "3 cases: " .. table.concat(counts, " "))

-- many goroutines selecting on shared channels: no value lost or doubled
local work, quit = chan(), chan()
local out = chan(200)
for _ = 1, 10 do
  go(function()
    while true do
      local k, wv = chan.select({ "recv", work }, { "recv", quit })
      if k == 2 then return end
      out:send(wv)
    end
  end)
end
for k = 1, 200 do work:send(k) end
quit:close()
local sum, seen = 0, {}
for _ = 1, 200 do
  local wv = out:recv()
  assert(not seen[wv], "value " .. wv .. " received twice")
  seen[wv] = true
  sum = sum + wv
end
assert(sum == 200 * 201 // 2)

-- select as a timeout with time.after
local never = chan()
i = chan.select({ "recv", never }, { "recv", time.after(0.01) })
assert(i == 2)

-- selects on both ends: two goroutines each selecting send/recv
local ab = chan()
go(function() chan.select({ "send", ab, "from select" }, { "recv", never }) end)
i, v = chan.select({ "recv", never }, { "recv", ab })
assert(i == 2 and v == "from select", "select-to-select hand-off")

print("ok")
