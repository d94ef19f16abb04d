-- runtime.lua: runtime.id, numgoroutine, gosched, goexit, gomaxprocs,
-- stats, gc, stack.

local function wait_until(cond, what)
  local deadline = time.now() + 5
  while not cond() do
    if time.now() > deadline then error("timed out waiting for " .. what, 2) end
    time.sleep(0.001)
  end
end

assert(runtime.id() == 1, "main goroutine id is 1")
assert(runtime.numgoroutine() == 1, "only the main goroutine at start, got "
  .. tostring(runtime.numgoroutine()))
assert(math.type(runtime.numgoroutine()) == "integer")
local base = runtime.numgoroutine()

---------------------------------------------------------------- numgoroutine
local release, started = chan(), chan()
for _ = 1, 5 do
  go(function()
    started:send(true)
    release:recv()
  end)
end
for _ = 1, 5 do started:recv() end
assert(runtime.numgoroutine() == base + 5, "5 blocked goroutines are alive")
assert(runtime.stats().goroutines == base + 5, "stats().goroutines counts them too")
release:close()
wait_until(function() return runtime.numgoroutine() == base end,
  "finished goroutines to leave numgoroutine")

---------------------------------------------------------------- gosched
local flag = false
go(function() flag = true end)
local deadline = time.now() + 5
while not flag do
  assert(time.now() < deadline, "runtime.gosched lets another goroutine run")
  runtime.gosched()
end

-- gosched in a goroutine: it stays runnable and goes on
local after = chan(1)
go(function()
  for _ = 1, 10 do runtime.gosched() end
  after:send("went on")
end)
assert(after:recv() == "went on")

---------------------------------------------------------------- goexit
local steps = chan(10)
local reached = false
go(function()
  steps:send("before")
  runtime.goexit()
  reached = true
  steps:send("after")
end)
wait_until(function() return runtime.numgoroutine() == base end, "goexit")
assert(steps:recv() == "before")
assert(steps:len() == 0, "nothing after runtime.goexit() ran")
assert(not reached, "code after runtime.goexit() did not run")

-- goexit deep in calls, and through a pcall: Go's Goexit cannot be recovered
go(function()
  local function deep(n)
    if n == 0 then runtime.goexit() end
    deep(n - 1)
  end
  pcall(deep, 10)
  reached = true
  steps:send("after pcall")
end)
wait_until(function() return runtime.numgoroutine() == base end, "goexit in pcall")
assert(not reached, "pcall does not stop runtime.goexit()")
assert(steps:len() == 0)

-- goexit runs the goroutine's <close> handlers, innermost first, through
-- pcall, xpcall and coroutines (Go runs a Goexit's deferred calls); they
-- see the error "goexit"; none of the catchers on the way catches it (a
-- message handler sees it, as Lua's handlers see lua.c's Ctrl-C).
local closed = chan(10)
local function closer(name)
  return setmetatable({}, { __close = function(_, err) closed:send(name .. ":" .. tostring(err)) end })
end
go(function()
  local outer <close> = closer("outer")
  xpcall(function()
    local mid <close> = closer("mid")
    coroutine.wrap(function()
      local inner <close> = closer("inner")
      pcall(runtime.goexit)
    end)()
  end, function(m) return "handled: " .. m end)
  reached = true
end)
assert(closed:recv() == "inner:goexit")
assert(closed:recv() == "mid:handled: goexit", "the message handler ran first, as in Lua")
assert(closed:recv() == "outer:goexit")
wait_until(function() return runtime.numgoroutine() == base end, "goexit with <close>")
assert(closed:len() == 0)
assert(not reached)

-- a finalizer runs in whichever goroutine set off the collection: goexit
-- there is an error, and that goroutine goes on
go(function()
  setmetatable({}, { __gc = function()
    local ok, err = pcall(runtime.goexit)
    closed:send(tostring(ok) .. " " .. err)
  end })
  collectgarbage()
  closed:send("went on")
end)
assert(closed:recv() == "false runtime.goexit: in a finalizer")
assert(closed:recv() == "went on")

-- goexit affects only its goroutine
local other = chan()
go(function() runtime.goexit() end)
go(function() other:send("alive") end)
assert(other:recv() == "alive")

---------------------------------------------------------------- gomaxprocs
local n = runtime.gomaxprocs()
assert(math.type(n) == "integer" and n >= 1, "gomaxprocs() is a positive integer")
assert(runtime.gomaxprocs() == n, "querying does not change it")
assert(runtime.stats().procs == n, "stats().procs is the number of Ps")
assert(runtime.gomaxprocs(2) == n, "setting returns the previous value")
assert(runtime.gomaxprocs() == 2)
assert(runtime.stats().procs == 2)
assert(runtime.gomaxprocs(1) == 2)
assert(runtime.gomaxprocs() == 1)
-- goroutines still run with one P, and timers still fire
for _ = 1, 5 do time.sleep(0.001) end
local pp = chan()
go(function() for i = 1, 100 do pp:send(i) end end)
for i = 1, 100 do assert(pp:recv() == i) end
assert(runtime.gomaxprocs(n) == 1)
assert(runtime.gomaxprocs() == n)

---------------------------------------------------------------- stats
local s = runtime.stats()
assert(type(s) == "table")
for _, k in ipairs({ "goroutines", "actors", "procs", "preemptions",
                     "sysmon_ticks", "gc_cycles" }) do
  assert(math.type(s[k]) == "integer", "stats()." .. k .. " is an integer, got "
    .. tostring(s[k]))
  assert(s[k] >= 0, "stats()." .. k .. " >= 0")
end
assert(s.goroutines >= 1)
assert(s.actors >= 1)
assert(s.procs == runtime.gomaxprocs())

---------------------------------------------------------------- gc
local before = runtime.stats().gc_cycles
local weak = setmetatable({}, { __mode = "k" })
local function fill()
  for i = 1, 100 do weak[{}] = i end
end
fill()
runtime.gc()
local left = 0
for _ in pairs(weak) do left = left + 1 end
assert(left == 0, "runtime.gc() ran a full collection (" .. left .. " weak keys left)")
assert(runtime.stats().gc_cycles >= before, "gc_cycles never goes down")
-- runtime.gc inside a goroutine
go(function()
  fill()
  runtime.gc()
  other:send(true)
end)
other:recv()
left = 0
for _ in pairs(weak) do left = left + 1 end
assert(left == 0, "runtime.gc() in a goroutine collected (" .. left .. " left)")

---------------------------------------------------------------- stack
local st = runtime.stack()
assert(type(st) == "string")
assert(st:find("^goroutine 1 %[running%]:"), "runtime.stack() in main:\n" .. st)
assert(st:find("runtime.lua", 1, true), "the traceback names the script:\n" .. st)

local gst = chan()
local gid = go(function() gst:send(runtime.stack()) end)
local gs = gst:recv()
assert(gs:find("^goroutine " .. gid .. " %[running%]:"),
  "runtime.stack() in goroutine " .. gid .. ":\n" .. gs)

-- runtime.stack(true): every goroutine, with its state in Go's words
-- (each blocked goroutine waits on its own channel: two of them on one
-- channel could complete each other)
local never_r, never_s, never_a, never_b = chan(), chan(), chan(), chan()
local wg = sync.waitgroup()
wg:add(1)
local mu = sync.mutex()
mu:lock()
local stop_spin = false
local want = {
  [go(function() never_r:recv() end)] = "chan receive",
  [go(function() never_s:send(1) end)] = "chan send",
  [go(function() chan.select({ "recv", never_a }, { "send", never_b, 1 }) end)] = "select",
  [go(function() time.sleep(30) end)] = "sleep",
  [go(function() wg:wait() end)] = "semacquire",
  [go(function() mu:lock() end)] = "semacquire",
  [go(function()
    while not stop_spin do runtime.gosched() end
  end)] = "runnable",
}
local function header(gid2, state)
  return "goroutine " .. gid2 .. " [" .. state .. "]:"
end
local function all_present(text)
  if not text:find(header(1, "running"), 1, true) then return false end
  for g, state in pairs(want) do
    if not text:find(header(g, state), 1, true) then return false end
  end
  return true
end
local all
local dl = time.now() + 5
repeat
  time.sleep(0.001)
  all = runtime.stack(true)
until all_present(all) or time.now() > dl
assert(all:find(header(1, "running"), 1, true), "main is running:\n" .. all)
for g, state in pairs(want) do
  assert(all:find(header(g, state), 1, true),
    "runtime.stack(true) should show '" .. header(g, state) .. "':\n" .. all)
end
-- one header per live goroutine
local headers = 0
for line in (all .. "\n"):gmatch("(.-)\n") do
  if line:match("^goroutine %d+ %[.-%]:$") then headers = headers + 1 end
end
assert(headers == runtime.numgoroutine(), "runtime.stack(true) lists "
  .. headers .. " goroutines, numgoroutine() is " .. runtime.numgoroutine()
  .. ":\n" .. all)
stop_spin = true

print("ok")
