-- nested_coroutines.lua: user coroutines inside goroutines. A park inside
-- a nested coroutine reaches the scheduler and comes back transparently;
-- the user's own coroutine.yield keeps its Lua meaning.

-- a generator (coroutine.wrap) that receives from a channel, in main
local ch = chan()
go(function()
  for i = 1, 5 do ch:send(i) end
  ch:close()
end)
local gen = coroutine.wrap(function()
  while true do
    local v, ok = ch:recv()
    if not ok then return "done" end
    coroutine.yield(v * 10)
  end
end)
for i = 1, 5 do
  local v = gen()
  assert(v == i * 10, "generator value " .. tostring(v))
end
assert(gen() == "done")

-- the same inside a goroutine
local out = chan()
local src = chan()
go(function()
  local g = coroutine.wrap(function()
    for v in src:range() do coroutine.yield(v + 1) end
  end)
  local acc = {}
  for _ = 1, 3 do acc[#acc + 1] = g() end
  out:send(acc)
end)
for i = 1, 3 do src:send(i) end
src:close()
local acc = out:recv()
assert(acc[1] == 2 and acc[2] == 3 and acc[3] == 4)

-- coroutine.resume / status / yield values around a park (sleep, recv)
local feed = chan(1)
local co = coroutine.create(function(a)
  assert(coroutine.isyieldable(), "a nested coroutine is yieldable")
  time.sleep(0.005)
  local b = coroutine.yield(a + 1)
  local extra = feed:recv()
  return b * 2, extra
end)
assert(coroutine.status(co) == "suspended")
local ok, r = coroutine.resume(co, 1)
assert(ok == true and r == 2, "resume returns the yielded value: " .. tostring(r))
assert(coroutine.status(co) == "suspended")
go(function()
  time.sleep(0.005)
  feed:send("extra")
end)
local ok2, r1, r2 = coroutine.resume(co, 5)
assert(ok2 == true and r1 == 10 and r2 == "extra", tostring(r1))
assert(coroutine.status(co) == "dead")
local ok3, err3 = coroutine.resume(co)
assert(ok3 == false and string.find(err3, "cannot resume dead coroutine", 1, true))

-- status of the outer coroutine while an inner one runs, across a park
local outer_status = chan(1)
local outer = coroutine.create(function()
  local me = coroutine.running()
  local inner = coroutine.wrap(function()
    time.sleep(0.001)
    outer_status:send(coroutine.status(me))
    return coroutine.status(coroutine.running())
  end)
  return inner()
end)
local okx, inner_status = coroutine.resume(outer)
assert(okx and inner_status == "running")
assert(outer_status:recv() == "normal")

-- three levels deep; the innermost parks on a channel
local deep = chan()
go(function()
  for i = 1, 3 do deep:send(i) end
end)
local level1 = coroutine.wrap(function()
  local level2 = coroutine.wrap(function()
    local level3 = coroutine.wrap(function()
      for _ = 1, 3 do coroutine.yield(deep:recv()) end
    end)
    for _ = 1, 3 do coroutine.yield(level3() * 10) end
  end)
  for _ = 1, 3 do coroutine.yield(level2() + 1) end
end)
assert(level1() == 11 and level1() == 21 and level1() == 31)

-- many goroutines, each with its own generator parking on its own channel;
-- the parks interleave and each resumes the right coroutine
local N = 20
local inputs, results = {}, chan(N)
for k = 1, N do
  inputs[k] = chan()
  go(function()
    local g = coroutine.wrap(function()
      for v in inputs[k]:range() do coroutine.yield(v) end
      return nil
    end)
    local sum = 0
    while true do
      local v = g()
      if v == nil then break end
      sum = sum + v
    end
    results:send({ k, sum })
  end)
end
for round = 1, 10 do
  for k = 1, N do inputs[k]:send(k * round) end
end
for k = 1, N do inputs[k]:close() end
for _ = 1, N do
  local res = results:recv()
  assert(res[2] == res[1] * 55, "goroutine " .. res[1] .. " summed " .. res[2])
end

-- parks of every kind inside a nested coroutine: select, mutex, waitgroup,
-- time.after
local mu = sync.mutex()
local wg = sync.waitgroup()
local sel = chan()
mu:lock()
wg:add(1)
local kinds = coroutine.wrap(function()
  local i, v = chan.select({ "recv", chan() }, { "recv", sel })
  coroutine.yield("select " .. i .. " " .. v)
  mu:lock()
  coroutine.yield("locked")
  mu:unlock()
  wg:wait()
  coroutine.yield("waited")
  time.after(0.002):recv()
  return "after"
end)
go(function() sel:send("s") end)
assert(kinds() == "select 2 s")
go(function() mu:unlock() end)
assert(kinds() == "locked")
go(function() wg:done() end)
assert(kinds() == "waited")
assert(kinds() == "after")

-- errors inside a nested coroutine, after a park, stay in that coroutine
local bad = coroutine.create(function()
  time.sleep(0.001)
  error("gen boom")
end)
local okb, errb = coroutine.resume(bad)
assert(okb == false and string.find(errb, "gen boom", 1, true))
assert(coroutine.status(bad) == "dead")
local werr = coroutine.wrap(function()
  local c1 = chan(1)
  c1:send(1)
  c1:recv()
  error({ code = 7 })
end)
local okw, ew = pcall(werr)
assert(okw == false and type(ew) == "table" and ew.code == 7,
  "error values pass through wrap unchanged")

-- yield across pcall, with a park inside the pcall
local pc = chan(1)
local gp = coroutine.wrap(function()
  local okp, v = pcall(function()
    local x = pc:recv()
    coroutine.yield(x)
    return x * 2
  end)
  coroutine.yield(okp and v)
end)
go(function() pc:send(4) end)
assert(gp() == 4)
assert(gp() == 8)

-- coroutine.close on a coroutine suspended after a park
local cl = coroutine.create(function()
  time.sleep(0.001)
  coroutine.yield(1)
  error("never")
end)
assert(select(2, coroutine.resume(cl)) == 1)
assert(coroutine.close(cl) == true)
assert(coroutine.status(cl) == "dead")

-- a plain producer/consumer with coroutines keeps working in a goroutine
local pcdone = chan()
go(function()
  local producer = coroutine.create(function()
    for i = 1, 100 do coroutine.yield(i) end
    return "end"
  end)
  local s = 0
  while true do
    local okk, v = coroutine.resume(producer)
    assert(okk)
    if v == "end" then break end
    s = s + v
  end
  pcdone:send(s)
end)
assert(pcdone:recv() == 5050)

print("ok")
