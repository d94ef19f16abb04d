-- runtime.interrupt on a parked goroutine: it stops at once, wherever it
-- waits (its <close> handlers run), and its wait is withdrawn losing
-- nothing: an interrupted sender did not send, an interrupted lock or
-- semaphore waiter was handed nothing.

local fails = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua").fails

-- Starts `body` as a goroutine with a <close> handler that reports its
-- end (and the error it ended with) on `ended`; waits until it parks.
local ended = chan(100)
local function parked(name, body)
  local id = go(function()
    local _ <close> = setmetatable({}, {
      __close = function(_, err) ended:send({ name, err }) end,
    })
    body()
    ended:send({ name, "returned" })
  end)
  -- Let it run up to its park (a goroutine parks in its first slice).
  for _ = 1, 3 do runtime.gosched() end
  return id
end

-- Interrupts `id` and checks that it ends at once, through its handler.
local function stops(name, id)
  local t0 = time.now()
  assert(runtime.interrupt(id) == true, name)
  local e = ended:recv()
  assert(e[1] == name, name .. ": ended " .. tostring(e[1]))
  assert(type(e[2]) == "string" and e[2]:find("interrupted", 1, true), name .. ": " .. tostring(e[2]))
  assert(time.now() - t0 < 1, name .. ": stopped at once")
end

-- Every kind of wait.
local ch = chan()
stops("recv", parked("recv", function() ch:recv() end))
stops("select", parked("select", function()
  chan.select({ "recv", chan() }, { "send", chan(), 1 })
end))
stops("select()", parked("select()", function() chan.select() end))
stops("nil select", parked("nil select", function() chan.select({ "recv", nil }) end))
stops("sleep", parked("sleep", function() time.sleep(3600) end))
local mu = sync.mutex()
mu:lock()
stops("lock", parked("lock", function() mu:lock() end))
local rw = sync.rwmutex()
rw:lock()
stops("rlock", parked("rlock", function() rw:rlock() end))
stops("wlock", parked("wlock", function() rw:lock() end))
local sem = sync.semaphore(1)
sem:acquire()
stops("acquire", parked("acquire", function() sem:acquire() end))
local wg = sync.waitgroup()
wg:add(1)
stops("wg", parked("wg", function() wg:wait() end))
local ctx, cancel = context.background():withcancel()
stops("done", parked("done", function() ctx:done():recv() end))
stops("recv ctx", parked("recv ctx", function() chan():recv(ctx) end))
local hold = chan()
local a = actor.spawn(function(h) h:recv() end, hold)
stops("actor wait", parked("actor wait", function() a:wait() end))
hold:send(true)
assert(a:wait() == true)
local l = assert(net.listen("127.0.0.1:0"))
local c = assert(net.dial(l:addr()))
local s = assert(l:accept())
stops("read", parked("read", function() s:read() end))
stops("accept", parked("accept", function() l:accept() end))
-- The socket still works for the next reader.
c:write("x\n")
assert(s:readline() == "x")
c:close(); s:close(); l:close()
cancel()
-- A connect in progress (a full accept queue leaves it pending).
local full = assert(net.listen("127.0.0.1:0", { backlog = 1 }))
local queued = {}
for _ = 1, 8 do
  local conn = net.dial(full:addr(), 0.03)
  if not conn then break end
  queued[#queued + 1] = conn
end
stops("dial", parked("dial", function() net.dial(full:addr()) end))
for _, q in ipairs(queued) do q:close() end
full:close()

-- A parked sender that is interrupted did not send: nobody receives its
-- value, and the channel works on.
local unbuffered = chan()
stops("send", parked("send", function() unbuffered:send("lost?") end))
local case = chan.select({ "recv", unbuffered }, { "default" })
assert(case == 2, "the interrupted sender's value was withdrawn")
go(function() unbuffered:send("next") end)
assert(unbuffered:recv() == "next")
local full = chan(1)
full:send(1)
stops("send full", parked("send full", function() full:send({ 2 }) end))
assert(full:recv() == 1)
assert(chan.select({ "recv", full }, { "default" }) == 2, "only the buffered value was there")

-- An interrupted lock waiter is handed nothing: the unlock frees the
-- mutex (the next trylock gets it), the next waiter in line gets it.
local mu2 = sync.mutex()
mu2:lock()
local first = parked("first", function() mu2:lock() end)
local got = chan(1)
go(function() mu2:lock() got:send(true) mu2:unlock() end)
runtime.gosched()
stops("first", first)
mu2:unlock()
assert(got:recv() == true, "the waiter behind the interrupted one got the lock")
assert(mu2:trylock(), "and let it go")
mu2:unlock()
local mu3 = sync.mutex()
mu3:lock()
stops("alone", parked("alone", function() mu3:lock() end))
mu3:unlock()
assert(mu3:trylock(), "nobody was handed the lock")
mu3:unlock()

-- A semaphore's units go past an interrupted waiter.
local sem2 = sync.semaphore(2)
sem2:acquire(2)
stops("units", parked("units", function() sem2:acquire(2) end))
assert(not sem2:tryacquire(1), "all held")
sem2:release(2)
assert(sem2:tryacquire(2), "the interrupted waiter took nothing")
sem2:release(2)

-- A read lock is not kept out by an interrupted writer.
local rw2 = sync.rwmutex()
rw2:rlock()
stops("writer", parked("writer", function() rw2:lock() end))
assert(rw2:tryrlock(), "no live writer waits")
rw2:runlock(); rw2:runlock()
assert(rw2:trylock())
rw2:unlock()

-- A select parked with a send case withdraws it too.
local sc = chan()
stops("select send", parked("select send", function()
  chan.select({ "send", sc, { "table" } }, { "recv", chan() })
end))
assert(chan.select({ "recv", sc }, { "default" }) == 2)

-- Interrupting from inside pcall: pcall does not catch it.
local caught = chan(1)
stops("pcall", parked("pcall", function()
  local ok = pcall(function() chan():recv() end)
  caught:send(ok)
end))
assert(chan.select({ "recv", caught }, { "default" }) == 2, "pcall passed the interrupt on")

-- Parked inside a coroutine of its own: the coroutine functions pass the
-- interrupt on too.
stops("wrapped", parked("wrapped", function()
  coroutine.wrap(function() chan():recv() end)()
  caught:send("went on")
end))
stops("resumed", parked("resumed", function()
  coroutine.resume(coroutine.create(function() chan():recv() end))
  caught:send("went on")
end))
assert(chan.select({ "recv", caught }, { "default" }) == 2)

-- An interrupted goroutine cannot wait again: a wait in its handler is
-- withdrawn at once (its send did not send).
local blocked = chan()
local handled = chan(2)
local before = runtime.numgoroutine()
local hid = go(function()
  local _ <close> = setmetatable({}, { __close = function()
    handled:send("handler")
    local ok = pcall(blocked.send, blocked, "from handler")
    handled:send(ok)
  end })
  chan():recv()
end)
for _ = 1, 3 do runtime.gosched() end
assert(runtime.interrupt(hid))
assert(handled:recv() == "handler")
for _ = 1, 100 do
  if runtime.numgoroutine() == before then break end
  runtime.gosched()
end
assert(runtime.numgoroutine() == before, "the handler did not stay parked")
assert(chan.select({ "recv", handled }, { "default" }) == 2, "its send raised")
assert(chan.select({ "recv", blocked }, { "default" }) == 2, "and did not send")

-- No such goroutine; bad input.
assert(runtime.interrupt(10 ^ 9 // 1) == false)
fails(function() runtime.interrupt("x") end, "runtime.interrupt: id must be a positive integer, got string")
print("ok")
