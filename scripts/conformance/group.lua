-- sync.group: Go's errgroup, with a context, a limit and a grace after
-- which members that ignore the cancellation are interrupted.

local fails = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua").fails

-- All succeed: wait returns nil, and the context ends after wait.
local g = sync.group()
local sum = chan(10)
for i = 1, 10 do g:go(function(n) sum:send(n) end, i) end
assert(g:wait() == nil)
local total = 0
for _ = 1, 10 do total = total + sum:recv() end
assert(total == 55)
assert(g:context():err() == "context canceled")
fails(function() g:go(function() end) end, "sync.group: go after wait")

-- The first error cancels 100 siblings parked in recv, sleep and a
-- socket read; all return within 20 ms of it (0.1 ms here); wait returns
-- that error.
local l = assert(net.listen("127.0.0.1:0"))
local g2 = sync.group()
local ctx = g2:context()
local conns = {}
local returned = {}
local function member(f)
  g2:go(function() f() returned[#returned + 1] = time.now() end)
end
for i = 1, 100 do
  if i % 3 == 0 then
    member(function() local _, _, err = chan():recv(ctx) assert(err == "context canceled") end)
  elseif i % 3 == 1 then
    member(function() local ok, err = time.sleep(60, ctx) assert(not ok and err) end)
  else
    local c = assert(net.dial(l:addr()))
    conns[#conns + 1] = c
    member(function()
      -- A socket read that watches the context.
      c:setcontext(ctx)
      local v, err = c:read()
      assert(v == nil and err == "context canceled", tostring(err))
    end)
  end
end
time.sleep(0.01)
local failed_at
g2:go(function() failed_at = time.now() error("first failure", 0) end)
g2:go(function() time.sleep(0.005) error("second failure", 0) end)
assert(g2:wait() == "first failure")
assert(#returned == 100)
local slowest = 0
for _, t in ipairs(returned) do slowest = math.max(slowest, t - failed_at) end
assert(slowest < 0.02, "all returned within 20 ms: " .. slowest)
assert(ctx:cause() == "first failure")
l:close()

-- A parent context's end cancels the group.
local parent, cancel = context.background():withcancel()
local g3 = sync.group(parent)
g3:go(function() g3:context():done():recv() end)
cancel("parent gone")
assert(g3:wait() == nil)
assert(g3:context():cause() == "parent gone")

-- setlimit: at most n at once.
local g4 = sync.group()
g4:setlimit(2)
local inside, most = 0, 0
for _ = 1, 8 do
  g4:go(function()
    inside = inside + 1
    if inside > most then most = inside end
    time.sleep(0.002)
    inside = inside - 1
  end)
end
assert(g4:wait() == nil and most == 2, most)

-- setgrace: a member spinning in a pure Lua loop, and one parked with no
-- context, are ended after the grace; their <close> handlers run.
local g5 = sync.group()
g5:setgrace(0.02)
local closed = chan(2)
g5:go(function()
  local _ <close> = setmetatable({}, { __close = function() closed:send("spinner") end })
  local n = 0
  while true do n = n + 1 end
end)
local deaf = chan()
g5:go(function()
  local _ <close> = setmetatable({}, { __close = function() closed:send("parked") end })
  deaf:recv()
end)
runtime.gosched()
g5:go(function() error("boom", 0) end)
local t1 = time.now()
assert(g5:wait() == "boom")
local ends = { [closed:recv()] = true, [closed:recv()] = true }
assert(ends.spinner and ends.parked)
local waited = time.now() - t1
assert(waited >= 0.015 and waited < 2, waited)
-- The parked member's receive was withdrawn: a send finds nobody.
assert(chan.select({ "send", deaf, 1 }, { "default" }) == 2)

-- g:cancel ends the group's context.
local g6 = sync.group()
g6:go(function() g6:context():done():recv() end)
g6:cancel("enough")
assert(g6:wait() == nil and g6:context():cause() == "enough")

-- Bad input.
fails(function() sync.group(5) end, "sync.group: context expected, got number")
fails(function() sync.group():go(5) end, "group:go: function expected, got number")
fails(function() sync.group():setlimit(0) end, "group:setlimit: n must be a positive integer, got 0")
fails(function() sync.group():setgrace(-1) end, "group:setgrace: seconds must be a non-negative number, got -1")
fails(function() sync.group().wait({}) end, "group:wait: group expected, got table")
for _, c in ipairs(conns) do c:close() end
print("ok")
