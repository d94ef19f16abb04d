-- park_contexts.lua: a goroutine can park (channel, sleep, select, lock)
-- anywhere Lua 5.4 can yield: under pcall/xpcall, in metamethods, in
-- generic-for iterators, in __close handlers, deep in recursion.

local c = chan(100)
local function fill(n)
  for i = 1, n do c:send(i) end
end

-- a helper goroutine answering "give me v" requests after a short delay, so
-- that every recv below really parks
local req = chan()
go(function()
  while true do
    local r = req:recv()
    time.sleep(0.001)
    r.reply:send(r.v)
  end
end)
local function ask(v)
  local reply = chan()
  req:send({ v = v, reply = reply })
  return (reply:recv())
end

local function run_in_goroutine(f)
  local res = chan(1)
  go(function() res:send(table.pack(pcall(f))) end)
  local r = res:recv()
  assert(r[1], "goroutine failed: " .. tostring(r[2]))
  return table.unpack(r, 2, r.n)
end

for _, where in ipairs({ "main", "goroutine" }) do
  local function check(f)
    if where == "main" then return f() end
    return run_in_goroutine(f)
  end

  -- pcall and xpcall
  assert(check(function()
    local ok, v = pcall(ask, "p")
    return ok and v
  end) == "p", where .. ": park under pcall")
  assert(check(function()
    local ok, v = xpcall(ask, debug.traceback, "x")
    return ok and v
  end) == "x", where .. ": park under xpcall")
  assert(check(function()
    local ok, v = pcall(pcall, pcall, ask, "pp")
    return ok and v
  end) == true, where .. ": park under nested pcall")
  -- an error after a park inside pcall is caught
  assert(check(function()
    local ok, err = pcall(function()
      ask(1)
      error("after park", 0)
    end)
    return not ok and err
  end) == "after park", where .. ": error after a park")

  -- metamethods
  local mt = {
    __index = function(_, k) return ask(k) end,
    __add = function(a, b) return ask(a.v + b.v) end,
    __concat = function(a, b) return ask(a.v .. b.v) end,
    __eq = function(a, b) return ask(a.v == b.v) end,
    __lt = function(a, b) return ask(a.v < b.v) end,
    __len = function(a) return ask(#a.v) end,
    __call = function(self, x) return ask(self.v * x) end,
  }
  local A = setmetatable({ v = 2 }, mt)
  local B = setmetatable({ v = 3 }, mt)
  assert(check(function() return A.missing end) == "missing", where .. ": __index")
  assert(check(function() return A + B end) == 5, where .. ": __add")
  assert(check(function()
    local S = setmetatable({ v = "s" }, mt)
    return S .. S
  end) == "ss", where .. ": __concat")
  assert(check(function() return A == B end) == false, where .. ": __eq")
  assert(check(function() return A < B end) == true, where .. ": __lt")
  assert(check(function()
    return #setmetatable({ v = "four" }, mt)
  end) == 4, where .. ": __len")
  assert(check(function() return A(10) end) == 20, where .. ": __call")
  assert(check(function()
    local t = setmetatable({}, { __newindex = function(t2, k, v) rawset(t2, k, ask(v)) end })
    t.x = "nv"
    return t.x
  end) == "nv", where .. ": __newindex")

  -- a generic-for iterator that parks
  assert(check(function()
    fill(5)
    local sum = 0
    for v in function() if c:len() > 0 then return ask(c:recv()) end end do
      sum = sum + v
    end
    return sum
  end) == 15, where .. ": iterator")

  -- a __close handler that parks
  assert(check(function()
    local log = {}
    do
      local _ <close> = setmetatable({}, { __close = function()
        log[#log + 1] = ask("closed")
      end })
      log[#log + 1] = "body"
    end
    return table.concat(log, ",")
  end) == "body,closed", where .. ": __close")

  -- deep recursion
  assert(check(function()
    local function deep(n)
      if n == 0 then return ask(0) end
      return 1 + deep(n - 1)
    end
    return deep(150)
  end) == 150, where .. ": deep recursion")

  -- a select and a sleep under pcall in a metamethod
  assert(check(function()
    local m = setmetatable({}, { __index = function()
      local ok, i = pcall(chan.select, { "recv", chan() }, { "recv", time.after(0.001) })
      time.sleep(0.001)
      return ok and i
    end })
    return m.anything
  end) == 2, where .. ": select in a metamethod")

  -- a mutex held across parks inside pcall
  assert(check(function()
    local mu = sync.mutex()
    mu:lock()
    go(function() mu:unlock() end)
    local ok = pcall(mu.lock, mu)
    mu:unlock()
    return ok
  end) == true, where .. ": lock under pcall")
end

print("ok")
