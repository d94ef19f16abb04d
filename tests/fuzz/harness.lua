-- The fixed part of every program tests/fuzz.rs generates. The generated
-- part calls `worker`, `relay` and `chaos` below, then `finish()`.
--
-- Every value that moves is a unique id (a string, or a table holding it)
-- and every step of its journey is printed, one line each (print writes a
-- line in one call, so actors' lines never interleave):
--   T id   a send of `id` starts          S id   it completed
--   F id   it did not happen (timeout, closed channel, cannot park)
--   R id   `id` was received              E      a receive raised "not
--   N      an operation raised otherwise         enough memory" (a value
--   DONE   every worker ended, every channel     may be gone: said so)
--          drained
-- The checker (tests/fuzz.rs) reads them back: no id received twice,
-- none received that was not sent, and after DONE every completed send
-- received, unless an E says a value was lost.

local TICK = 0.003
local chans = {}
local serial = 0

local function ev(kind, id) print(kind .. " " .. tostring(id or "")) end

local function newid(tag)
  serial = serial + 1
  return tag .. "." .. serial
end

-- A value carrying `id`, in one of a few shapes.
local function value(id, shape)
  if shape == 1 then return id end
  if shape == 2 then return { id = id, pad = ("p"):rep(64) } end
  -- a function cannot cross actors: refused on a shared channel, and a
  -- channel holding one cannot be shared
  if shape == 4 then return { id = id, f = function() return id end } end
  return { id = id, nested = { list = { 1, 2, 3 }, self = false } }
end

local function idof(v)
  if type(v) == "table" then return v.id end
  return v
end

-- A failure that is not a lost value, or one that is (out of memory).
local function failed(err)
  if tostring(err):find("not enough memory", 1, true) then ev("E") else ev("N") end
end

local function send(c, id, shape)
  ev("T", id)
  local ok, i = pcall(chan.select, { "send", c, value(id, shape) }, { "recv", time.after(TICK) })
  if ok and i == 1 then ev("S", id) else ev("F", id) end
end

local function recv(c)
  local ok, i, v, vok = pcall(chan.select, { "recv", c }, { "recv", time.after(TICK) })
  if not ok then return failed(i) end
  if i == 1 and vok then ev("R", idof(v)) return v end
end

-- The operations a worker runs, by name: the grammar's terminals.
local ops = {}

function ops.send(tag, c, _, shape) send(c, newid(tag), shape) end
function ops.recv(_, c) recv(c) end

-- select over a receive, a send and a default
function ops.select(tag, c, d)
  local id = newid(tag)
  ev("T", id)
  local ok, i, v, vok = pcall(chan.select, { "recv", c }, { "send", d, value(id, 2) }, { "default" })
  if not ok then ev("F", id) return failed(i) end
  if i == 2 then ev("S", id) else ev("F", id) end
  if i == 1 and vok then ev("R", idof(v)) end
end

-- a finalizer that sends (it cannot park: only a buffered slot will do)
function ops.finalizer(tag, c)
  local id = newid(tag)
  do
    setmetatable({}, { __gc = function() send(c, id, 1) end })
  end
  collectgarbage()
  collectgarbage()
end

-- parking inside a sort comparator, a gsub callback, __tostring: refused
-- (cannot yield across a C call) unless the channel is ready
function ops.callback(tag, c, d)
  pcall(table.sort, { 3, 1, 2 }, function(a, b) recv(c) return a < b end)
  pcall(string.gsub, "ab", ".", function() send(d, newid(tag), 1) end)
  pcall(tostring, setmetatable({}, { __tostring = function() recv(c) return "x" end }))
  -- a coroutine resumed inside a C call: it cannot park either
  pcall(table.sort, { 2, 1 }, function(a, b)
    coroutine.wrap(function() recv(c) send(d, newid(tag), 1) end)()
    return a < b
  end)
end

-- a generator that parks inside coroutine.wrap
function ops.generator(_, c)
  local gen = coroutine.wrap(function()
    for _ = 1, 2 do coroutine.yield(recv(c)) end
  end)
  pcall(gen)
  pcall(gen)
end

function ops.close(_, c) pcall(c.close, c) end
function ops.sleep() time.sleep(TICK * math.random(0, 3)) end
function ops.gosched() runtime.gosched() end

-- a timer stopped, reset, left to fire
function ops.timer()
  local t = time.timer(TICK)
  if math.random(2) == 1 then t:stop() else t:reset(TICK * 2) end
  time.afterfunc(TICK, function() end)
end

-- A worker goroutine of the main actor: runs `steps`, then says done.
local wg = sync.waitgroup()
function worker(tag, steps)
  wg:add(1)
  go(function()
    for _, s in ipairs(steps) do
      local ok, err = pcall(ops[s[1]], tag, chans[s[2]], chans[s[3]], s[4])
      if not ok then failed(err) end
    end
    wg:done()
  end)
end

-- A relay actor: receives `n` values from channel `from` and sends each on
-- as a new value (its own id, derived) to channel `to`. Both channels
-- become shared: what they held is kept for this actor, copied for it.
local relays = {}
function relay(from, to, n, memory)
  local ok, h = pcall(actor.spawn, { function(from, to, n, TICK)
    local function ev(kind, id) print(kind .. " " .. tostring(id or "")) end
    for _ = 1, n do
      local ok, i, v, vok = pcall(chan.select, { "recv", from }, { "recv", time.after(TICK) })
      if not ok then
        ev(tostring(i):find("not enough memory", 1, true) and "E" or "N")
      elseif i == 1 and vok then
        local id = type(v) == "table" and v.id or v
        ev("R", id)
        local out = id .. ">"
        ev("T", out)
        local ok2, j = pcall(chan.select, { "send", to, { id = out } }, { "recv", time.after(TICK) })
        ev((ok2 and j == 1) and "S" or "F", out)
      end
    end
  end, memory = memory }, chans[from], chans[to], n, TICK)
  if ok then relays[#relays + 1] = h else failed(h) end
end

-- Chaos actors: no values to account for, only limits to break. Each has
-- a memory limit of its own; the CPU budget stops the spinners.
local chaos_bodies = {
  spin = function() while true do end end,
  spin_pcall = function() while true do pcall(function() while true do end end) end end,
  spin_sort = function() table.sort({ 3, 2, 1 }, function() while true do end end) end,
  spin_gsub = function() string.gsub("abc", ".", function() while true do end end) end,
  spin_gc = function()
    setmetatable({}, { __gc = function() while true do end end })
    collectgarbage()
  end,
  hog = function()
    for _ = 1, 3 do
      pcall(function() local t = {} for i = 1, 1e7 do t[i] = ("h"):rep(32) .. i end end)
      collectgarbage()
    end
  end,
  goroutines = function()
    pcall(function() while true do go(function() chan():recv() end) end end)
  end,
  channels = function()
    pcall(chan, 1 << 30)
    local keep = {}
    pcall(function() for i = 1, 1e6 do keep[i] = chan(64) end end)
  end,
  timers = function()
    local keep = {}
    pcall(function() for i = 1, 1e6 do keep[i] = time.timer(3600) end end)
    local t = time.timer(3600)
    for i = 1, 1e5 do t:reset(3600 + i) end
  end,
  deep = function()
    local t = {}
    for _ = 1, 5000 do t = { t } end
    local c = chan(1)
    actor.spawn(function() end, c):wait()
    pcall(c.send, c, t)
  end,
}
local chaos_handles = {}
function chaos(kind, memory)
  local ok, h = pcall(actor.spawn, { chaos_bodies[kind], memory = memory })
  if ok then chaos_handles[#chaos_handles + 1] = h else failed(h) end
end

function make_chans(caps)
  for i, cap in ipairs(caps) do chans[i] = chan(cap) end
end

-- Waits for every worker and actor, drains every channel, says DONE.
function finish()
  wg:wait()
  for _, h in ipairs(relays) do h:wait() end
  for _, h in ipairs(chaos_handles) do h:wait() end
  for _, c in ipairs(chans) do
    while true do
      local ok, i, v, vok = pcall(chan.select, { "recv", c }, { "default" })
      if not ok then failed(i) break end
      if i ~= 1 or not vok then break end
      ev("R", idof(v))
    end
  end
  print("DONE")
end
