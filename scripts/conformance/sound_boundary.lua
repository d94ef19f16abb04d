-- sound_boundary.lua: a script cannot reach freed memory or abort the
-- process through lugo's userdata, finalizers or memory limits (issue
-- "Sound and bounded", items 1 and 2).

-- lugo's metatables are protected: getmetatable gives the type's name
local ch, wg, mu = chan(1), sync.waitgroup(), sync.mutex()
assert(getmetatable(ch) == "chan")
assert(getmetatable(wg) == "waitgroup")
assert(getmetatable(mu) == "mutex")
assert(getmetatable(actor.self()) == "actor")
assert(not pcall(setmetatable, ch, {}), "a userdata's metatable is not settable")

-- __gc called by a script (through the debug library) frees nothing: the
-- channel goes on working
local gc = debug.getmetatable(ch).__gc
gc(ch)
gc(ch)
ch:send("still here")
assert(ch:recv() == "still here")

-- A finalizer that calls __gc on a shared channel while a value is being
-- copied into it (the use-after-free of the issue): the value arrives whole.
local shared = chan(1000)
local out = chan(1)
local h = actor.spawn(function(c, o)
  local v = c:recv()
  local n = 0
  for _ in pairs(v) do n = n + 1 end
  o:send(n)
end, shared, out)
local msg = {}
for i = 1, 20000 do msg[i + 0.5] = true end
collectgarbage()
setmetatable({}, { __gc = function()
  gc(shared)
  KEEP = {}
  for i = 1, 64 do KEEP[i] = chan(5) end
end })
shared:send(msg)
assert(out:recv() == 20000, "every key arrived")
assert(h:wait())

-- A memory-limited actor parked in recv is handed a value larger than its
-- limit: the receive raises "not enough memory" (the process goes on).
local big = string.rep("x", 4 << 20)
local parked, result = chan(), chan(1)
local small = actor.spawn({ function(c, r)
  local ok, err = pcall(function() return #c:recv() end)
  r:send({ ok = ok, err = tostring(err) })
end, memory = 2 << 20 }, parked, result)
parked:send(big)
local r = result:recv()
assert(not r.ok and r.err:find("not enough memory"), r.err)
assert(small:wait())

-- The same through a buffered channel (the receiver does not park)
local buffered, result2 = chan(1), chan(1)
buffered:send(big)
local small2 = actor.spawn({ function(c, r)
  local ok, err = pcall(function() return #c:recv() end)
  r:send({ ok = ok, err = tostring(err) })
end, memory = 2 << 20 }, buffered, result2)
r = result2:recv()
assert(not r.ok and r.err:find("not enough memory"), r.err)
assert(small2:wait())

-- ... and through select
local sel, result3 = chan(), chan(1)
local small3 = actor.spawn({ function(c, r)
  local ok, err = pcall(function()
    local _, v = chan.select({ "recv", c })
    return #v
  end)
  r:send({ ok = ok, err = tostring(err) })
end, memory = 2 << 20 }, sel, result3)
sel:send(big)
r = result3:recv()
assert(not r.ok and r.err:find("not enough memory"), r.err)
assert(small3:wait())

print("ok")
