-- sched.lua: a minimal Go-like scheduler in plain Lua (5.1 to 5.4, LuaJIT),
-- the plain-Lua peer of lugo in run.sh --peers. One OS thread, cooperative:
-- a FIFO run queue of coroutines, channels (unbuffered and buffered, with
-- wait queues, Go's hand-off rules, close), a waitgroup, and sleep on a
-- binary heap of deadlines. The clock is os.clock() (CPU seconds: the only
-- sub-second clock plain Lua has). The process never blocks: with nothing
-- runnable and a timer pending, run() busy-waits on os.clock() until the
-- earliest deadline, so its CPU time advances like wall time.
--   local S = dofile("sched.lua")
--   S.run(function() local c = S.chan(); S.go(function() c:send(1) end); print(c:recv()) end)
local create, resume, yield, running, status =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.running, coroutine.status
local clock, floor = os.clock, math.floor
local S = { now = clock }

-- FIFO of coroutines, each with up to two values to resume it with, kept
-- in two side tables only when not nil (a wait queue holds only its
-- coroutines); the indices are reset when it empties.
local function fifo() return { h = 1, t = 0, a = {}, b = {} } end
local function push(q, co, a, b)
  local t = q.t + 1
  q.t, q[t] = t, co
  if a ~= nil then q.a[t] = a end
  if b ~= nil then q.b[t] = b end
end
local function pop(q)
  local h = q.h
  if h > q.t then return nil end
  local co, qa, qb = q[h], q.a, q.b
  local a, b = qa[h], qb[h]
  q[h] = nil
  if a ~= nil then qa[h] = nil end
  if b ~= nil then qb[h] = nil end
  if h == q.t then q.h, q.t = 1, 0 else q.h = h + 1 end
  return co, a, b
end

local runq, woken = fifo(), fifo()   -- woken: sleepers due, run first
local td, tc, nt = {}, {}, 0   -- timer heap: deadlines, coroutines, count

function S.go(f, a, b) push(runq, create(f), a, b) end   -- f(a, b): two args at most

function S.sleep(d)
  nt = nt + 1
  local i, t = nt, clock() + d
  while i > 1 and td[floor(i / 2)] > t do   -- sift up
    local p = floor(i / 2); td[i], tc[i] = td[p], tc[p]; i = p
  end
  td[i], tc[i] = t, running()
  yield()
end

local function pop_timer()   -- the earliest timer's coroutine; sift down
  local co, t, c = tc[1], td[nt], tc[nt]
  td[nt], tc[nt] = nil, nil
  nt = nt - 1
  local i = 1
  while true do
    local k = 2 * i
    if k > nt then break end
    if k < nt and td[k + 1] < td[k] then k = k + 1 end
    if td[k] >= t then break end
    td[i], tc[i] = td[k], tc[k]; i = k
  end
  if nt > 0 then td[i], tc[i] = t, c end
  return co
end

-- Run f as the main coroutine until it returns. While a timer is pending,
-- the due ones are moved to `woken` every CHECK switches and whenever the
-- run queue is empty: os.clock() costs about 0.5 us (a system call), more
-- than a switch. Woken sleepers run before the run queue (lugo puts them at
-- its front, Go in runnext).
local CHECK, tick = 16, 0
function S.run(f)
  S.go(f)
  local main = runq[runq.t]
  while true do
    if nt > 0 then
      tick = tick + 1
      if tick >= CHECK or runq.h > runq.t then
        local now = clock()
        tick = 0
        while nt > 0 and td[1] <= now do push(woken, pop_timer()) end
      end
    end
    local co, a, b
    if woken.t > 0 then co = pop(woken) else co, a, b = pop(runq) end
    if co then
      local ok, err = resume(co, a, b)
      if not ok then error(err, 0) end
      if co == main and status(co) == "dead" then return end
    elseif nt > 0 then
      local d = td[1]
      while clock() < d do end        -- idle: busy-wait for the next deadline
    else
      error("sched: all coroutines are asleep - deadlock", 0)
    end
  end
end

local Chan = {}
Chan.__index = Chan
-- A ring buffer of cap slots (items buf[h+1 .. h+n] mod cap), receivers
-- waiting (recvq) and senders waiting with their value (sendq).
function S.chan(cap)
  return setmetatable({ cap = cap or 0, buf = {}, h = 0, n = 0,
                        recvq = fifo(), sendq = fifo(), closed = false }, Chan)
end
function Chan:send(v)
  if self.closed then error("send on closed channel", 2) end
  local r = pop(self.recvq)
  if r then push(runq, r, v) return end         -- hand it to a waiting receiver
  local n, cap = self.n, self.cap
  if n < cap then self.buf[(self.h + n) % cap + 1] = v; self.n = n + 1; return end
  push(self.sendq, running(), v)                  -- full (or unbuffered): park
  yield()
end
function Chan:recv()
  local n = self.n
  if n > 0 then            -- a parked sender (buffer full) takes the freed slot
    local i, buf = self.h + 1, self.buf
    local v, s, sv = buf[i], pop(self.sendq)
    buf[i], self.h = sv, i % self.cap
    if s then push(runq, s) else self.n = n - 1 end
    return v
  end
  local s, sv = pop(self.sendq)
  if s then push(runq, s) return sv end           -- unbuffered hand-off
  if self.closed then return nil end
  push(self.recvq, running())
  return yield()
end
local function wake_all(q) for _ = q.h, q.t do push(runq, (pop(q))) end end
function Chan:close() self.closed = true; wake_all(self.recvq) end

-- Waitgroup: a counter and the coroutines waiting for it to reach 0.
local WG = {}
WG.__index = WG
function S.waitgroup() return setmetatable({ n = 0, q = fifo() }, WG) end
function WG:add(k) self.n = self.n + k end
function WG:done()
  self.n = self.n - 1
  if self.n == 0 then wake_all(self.q) end
end
function WG:wait()
  if self.n > 0 then push(self.q, running()); yield() end
end

return S
