-- coroutine_transparency.lua: to user code, the top of every goroutine (and
-- of the main chunk) looks like Lua's main thread.

local function has(err, needle)
  return string.find(tostring(err), needle, 1, true) ~= nil
end

local function check_top(where)
  assert(coroutine.isyieldable() == false, where .. ": isyieldable() is false")
  local co, ismain = coroutine.running()
  assert(type(co) == "thread", where .. ": running() returns a thread")
  assert(ismain == true, where .. ": running() returns true as 2nd value")
  assert(coroutine.status(co) == "running", where .. ": status is running")

  local ok, err = pcall(coroutine.yield, 1)
  assert(not ok, where .. ": yield at top level fails")
  assert(has(err, "attempt to yield from outside a coroutine"), where .. ": " .. tostring(err))

  ok, err = pcall(function() coroutine.yield(1) end)
  assert(not ok and has(err, "attempt to yield from outside a coroutine"),
    where .. " (in a function under pcall): " .. tostring(err))

  ok, err = pcall(function() return coroutine.yield() end)
  assert(not ok and has(err, "attempt to yield from outside a coroutine"),
    where .. " (no values): " .. tostring(err))

  local rok, rerr = coroutine.resume(co)
  assert(rok == false and type(rerr) == "string",
    where .. ": resume of the running thread fails: " .. tostring(rerr))

  ok, err = pcall(coroutine.close, co)
  assert(not ok, where .. ": closing the running thread fails")

  -- a nested coroutine is not the top
  local inner_co, inner_main, inner_y = coroutine.wrap(function()
    local c, m = coroutine.running()
    return c, m, coroutine.isyieldable()
  end)()
  assert(type(inner_co) == "thread" and inner_co ~= co)
  assert(inner_main == false and inner_y == true, where .. ": nested coroutine")
  return co
end

local main_co = check_top("main chunk")

-- the same in goroutines, the goroutine still working afterwards
local res = chan()
local threads = {}
for k = 1, 3 do
  go(function()
    local ok, co = pcall(check_top, "goroutine " .. k)
    res:send({ ok, co })
  end)
end
for _ = 1, 3 do
  local r = res:recv()
  assert(r[1], tostring(r[2]))
  assert(r[2] ~= main_co, "a goroutine's thread is not main's")
  assert(not threads[r[2]], "each goroutine has its own thread")
  threads[r[2]] = true
end

-- after parks, the goroutine's top still looks like the main thread
go(function()
  time.sleep(0.001)
  local c = chan(1)
  c:send(1)
  c:recv()
  local ok, err = pcall(check_top, "goroutine after parks")
  res:send({ ok, err })
end)
local r = res:recv()
assert(r[1], tostring(r[2]))
time.sleep(0.001)
check_top("main chunk after a park")

-- a user's coroutine.yield inside a nested coroutine goes to its resumer,
-- never to the scheduler
go(function()
  local co = coroutine.create(function(a, b)
    local c = coroutine.yield(a + b)
    local d, e = coroutine.yield(c * 2)
    return d .. e
  end)
  local out = {}
  local ok, v = coroutine.resume(co, 1, 2)
  out[#out + 1] = ok and v
  ok, v = coroutine.resume(co, 10)
  out[#out + 1] = ok and v
  ok, v = coroutine.resume(co, "x", "y")
  out[#out + 1] = ok and v
  out[#out + 1] = coroutine.status(co)
  res:send(out)
end)
local out = res:recv()
assert(out[1] == 3 and out[2] == 20 and out[3] == "xy" and out[4] == "dead")

-- a nested coroutine sees normal Lua errors for yields across C calls
go(function()
  local co = coroutine.wrap(function()
    local ok, err = pcall(table.sort, { 3, 2, 1 }, function(x, y)
      coroutine.yield()
      return x < y
    end)
    return ok, err
  end)
  local ok, err = co()
  res:send({ ok, tostring(err) })
end)
r = res:recv()
assert(r[1] == false and has(r[2], "attempt to yield across a C-call boundary"), r[2])

-- yielding the main thread of a wrap-generator's caller from a goroutine is
-- still an error after a nested coroutine finished
go(function()
  local g = coroutine.wrap(function() coroutine.yield(1) end)
  g()
  local ok, err = pcall(coroutine.yield, 2)
  res:send({ ok, tostring(err) })
end)
r = res:recv()
assert(r[1] == false and has(r[2], "attempt to yield from outside a coroutine"), r[2])

-- coroutine.wrap errors carry position info, as in Lua
local w = coroutine.wrap(function() error("wrapped") end)
local ok, err = pcall(w)
assert(not ok and has(err, "wrapped"))

-- isyieldable(co) with an argument (Lua 5.4)
local sus = coroutine.create(function() coroutine.yield() end)
assert(coroutine.isyieldable(sus) == true)
assert(coroutine.isyieldable(main_co) == false, "main's thread is not yieldable")

print("ok")
