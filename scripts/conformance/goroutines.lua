-- goroutines.lua: go(f, ...), goroutine ids, arguments, shared memory,
-- goroutines starting goroutines, a long daisy chain.

assert(type(go) == "function", "go is a global function")
assert(runtime.id() == 1, "the main goroutine has id 1")

-- go returns an integer id; runtime.id() inside the goroutine returns it
local ch = chan()
local id = go(function(a, b)
  ch:send({ runtime.id(), a + b })
end, 2, 3)
assert(math.type(id) == "integer", "go returns an integer, got " .. tostring(id))
assert(id ~= 1, "a new goroutine does not get the main goroutine's id")
local r = ch:recv()
assert(r[1] == id, "runtime.id() inside the goroutine equals the id go returned")
assert(r[2] == 5, "arguments reach the goroutine")
assert(runtime.id() == 1, "main still has id 1")

-- arguments keep their count, nils included
go(function(...) ch:send(table.pack(...)) end, 1, nil, "x", nil)
local p = ch:recv()
assert(p.n == 4, "4 arguments, got " .. tostring(p.n))
assert(p[1] == 1 and p[2] == nil and p[3] == "x" and p[4] == nil)

-- no arguments at all
go(function(...) ch:send(select("#", ...)) end)
assert(ch:recv() == 0)

-- tables are passed by reference (same actor: shared memory)
local t = {}
go(function(x) x.touched = true; ch:send(x) end, t)
assert(ch:recv() == t, "the very same table comes back")
assert(t.touched)

-- ids are distinct among live goroutines
local N = 200
local results = chan(N)
local gate = chan()
local ids = {}
for i = 1, N do
  local gid = go(function(k)
    gate:recv()
    results:send(k * k)
  end, i)
  assert(math.type(gid) == "integer")
  assert(not ids[gid], "duplicate goroutine id " .. gid)
  assert(gid ~= 1)
  ids[gid] = true
end
for _ = 1, N do gate:send(true) end
local sum = 0
for _ = 1, N do sum = sum + results:recv() end
assert(sum == N * (N + 1) * (2 * N + 1) // 6, "every goroutine ran exactly once")

-- goroutines of one actor share memory (upvalues, tables)
local shared = { count = 0 }
local done = chan()
for _ = 1, 10 do
  go(function()
    shared.count = shared.count + 1
    done:send(true)
  end)
end
for _ = 1, 10 do done:recv() end
assert(shared.count == 10)

-- a goroutine can start goroutines, which outlive it
local leaf = chan()
go(function()
  for i = 1, 5 do
    go(function() leaf:send(i) end)
  end
end)
local seen = {}
for _ = 1, 5 do seen[leaf:recv()] = true end
for i = 1, 5 do assert(seen[i], "nested goroutine " .. i .. " ran") end

-- a goroutine's return values are dropped; pcall inside it works as usual
go(function() return 1, 2, 3 end)
go(function()
  local ok, err = pcall(error, "inner")
  ch:send({ ok, err })
end)
local e = ch:recv()
assert(e[1] == false and e[2] == "inner")

-- any function can be a goroutine, a library function included
local box = chan(1)
go(box.send, box, "from a method")
local v, ok = box:recv()
assert(v == "from a method" and ok == true)

-- the daisy chain (Go's "Chinese whispers"): n goroutines, each blocked on
-- its right neighbour, then one value travels through all of them
local n = 2000
local leftmost = chan()
local left = leftmost
for _ = 1, n do
  local right = chan()
  go(function(l, rr) l:send(1 + rr:recv()) end, left, right)
  left = right
end
go(function(c) c:send(1) end, left)
assert(leftmost:recv() == n + 1, "the value went through every goroutine")

-- main can also be the one that waits while many goroutines finish
local wg_done = chan(100)
for i = 1, 100 do go(function() wg_done:send(i) end) end
local total = 0
for _ = 1, 100 do total = total + wg_done:recv() end
assert(total == 5050)

print("ok")
