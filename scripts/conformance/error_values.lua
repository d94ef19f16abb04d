-- error_values.lua: an error object of any type comes out of pcall,
-- coroutine.wrap, coroutine.resume and a channel as it went in, the same
-- value, also when the code that raised it parked first (issue "Faithful
-- Lua", item 2). Strings are raised at level 0, without a position.

local mt = setmetatable({}, { __tostring = function() return "with __tostring" end })
local values = { {}, mt, 42, 4.5, true, false, "text", io.stdout, print,
  coroutine.create(print), chan() }

local c, mu = chan(1), sync.mutex()
local parks = {
  none = function() end,
  sleep = function() time.sleep(0.0001) end,
  recv = function() c:send(1) c:recv() end,
  select = function() chan.select({ "recv", time.after(0.0001) }) end,
  mutex = function() mu:lock() mu:unlock() end,
  gosched = function() runtime.gosched() end,
}

local function check(v, how, ok, e)
  assert(ok == false, how .. ": raised")
  assert(rawequal(e, v), how .. ": got " .. tostring(e) .. " for " .. tostring(v))
end

local done = chan()
for pname, park in pairs(parks) do
  go(function()
    for _, v in ipairs(values) do
      local how = pname .. "/" .. type(v)
      check(v, how .. " pcall", pcall(function() park() error(v, 0) end))
      check(v, how .. " wrap", pcall(coroutine.wrap(function() park() error(v, 0) end)))
      check(v, how .. " resume", coroutine.resume(coroutine.create(function() park() error(v, 0) end)))
      -- (called by pcall: a wrap called from Lua code would put its
      -- caller's position before a string, as in Lua)
      check(v, how .. " nested", pcall(coroutine.wrap(function()
        local _, e = pcall(function() park() error(v, 0) end)
        park()
        error(e, 0)
      end)))
    end
    -- nil, too (it cannot sit in the list)
    local ok, e = pcall(function() park() error(nil) end)
    assert(ok == false and e == nil, pname .. " nil")
    ok, e = pcall(coroutine.wrap(function() park() error() end))
    assert(ok == false and e == nil, pname .. " nil through wrap")
    done:send(pname)
  end)
end
for _ in pairs(parks) do done:recv() end

-- a channel passes each value on unchanged, in a goroutine and across a park
local ch = chan(#values)
go(function() for _, v in ipairs(values) do ch:send(v) end end)
for _, v in ipairs(values) do assert(rawequal(ch:recv(), v), type(v)) end

-- a level-2 string error after a park points at the caller, as without one
local function raises_at_caller() time.sleep(0.0001) error("at caller", 2) end
local ok, e = pcall(function()
  raises_at_caller() -- this line
end)
assert(not ok and e:find("error_values.lua:%d+: at caller"), e)
local line = tonumber(e:match(":(%d+): at caller"))
assert(line == debug.getinfo(1, "l").currentline - 4, e)

print("ok")
