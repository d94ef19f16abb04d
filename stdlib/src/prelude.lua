-- lugo's Lua half of the stdlib (chunk "[lugo]": hidden from tracebacks).
--
-- Receives P, the table of Rust functions, and installs the globals go,
-- chan, time, sync and runtime. The hot functions (channel methods,
-- select, sleep, sync methods) are C functions that park and raise by
-- themselves; the others answer with their results, or SCHED, kind ("park
-- this goroutine"), or ERR, message ("raise this"), which `call` below
-- acts on. The coroutine library and the bodies of goroutines are C
-- (stdlib/src/coroutine.rs).
local P = ...   -- read at the top level only: no function keeps P alive

local SCHED, ERR = P.SCHED, P.ERR
local KIND_GOSCHED, KIND_EXIT, KIND_PANIC = P.KIND_GOSCHED, P.KIND_EXIT, P.KIND_PANIC
local co_create, co_yield = coroutine.create, coroutine.yield
local error, type, select, tostring = error, type, select, tostring
local setmetatable, rawget = setmetatable, rawget
local traceback = debug.traceback

-- Results of a raw function that may have parked. Called in tail position
-- by the public function, so level 2 is the public function's caller.
local function after_park(...)
  local a, b = ...
  if a == ERR then error(b, 2) end
  return ...
end

local function call(...)
  local a, b = ...
  if a == SCHED then return after_park(co_yield(SCHED, b)) end
  if a == ERR then error(b, 2) end
  return ...
end

local function wrap(raw)
  return function(...) return call(raw(...)) end
end

-- Results of a raw function that never parks, called `level` frames below
-- the user's code (not in tail position): raise its ERR at the user.
local function checked(level, ...)
  local a, b = ...
  if a == ERR then error(b, level + 1) end
  return ...
end


---------------------------------------------------------------- goroutines

-- The body of every goroutine thread is a C function (gomain): it runs
-- `f(...)` under a protected call and turns an uncaught error into the
-- panic its M reports. Its M starts it with f and the arguments that
-- `spawn` moved onto the thread's stack.
local spawn, gomain = P.spawn, P.gomain
local function go(f, ...)
  if type(f) ~= "function" then
    error("go: function expected, got " .. type(f), 2)
  end
  return spawn(co_create(gomain), f, ...)
end

-- The coroutine library is C too (stdlib/src/coroutine.rs): it forwards
-- a nested coroutine's parks to the M, and makes the top of a goroutine
-- look like Lua's main thread. Lua's own `yield` (co_yield above) is the
-- scheduler's request channel.

---------------------------------------------------------------- chan

local chan = setmetatable({}, { __call = P.chan_new })

-- The methods send, recv, close, len and cap are C functions that park by
-- yielding themselves.
local M = P.chan_methods
local recv, ischan = M.recv, P.ischan

function M.range(ch)
  if not ischan(ch) then
    error("ch:range: channel expected, got " .. type(ch), 2)
  end
  return function()
    local v, ok = recv(ch)
    if ok then return v end
  end
end

-- Position of the handler function in each kind of case.
local HANDLER = { recv = 3, send = 4, default = 2 }
local raw_select = P.select

function chan.select(...)
  local i, v, ok = raw_select(...)
  local c = (select(i, ...))
  local kind = c[1]
  local h = c[HANDLER[kind]]
  if kind == "recv" then
    if type(h) == "function" then return i, h(v, ok) end
    return i, v, ok
  end
  if type(h) == "function" then return i, h() end
  return i
end

---------------------------------------------------------------- time

local time = { sleep = P.sleep, now = P.now }
local timer_stop, timer_reset = P.timer_stop, P.timer_reset
local UD = {}  -- key of the timer userdata inside a timer object

-- time.afterfunc callbacks by task id, until they fire or are stopped.
local pending = {}

-- `__lugo` names lugo's own objects: one cannot be sent to another actor
-- (`cannot send a ticker at arg1`), where it would be a plain table.
local Timer = { __metatable = "timer", __lugo = "timer" }
Timer.__index = Timer
local Ticker = { __metatable = "ticker", __lugo = "ticker", __index = Timer }

-- The timer userdata of a timer object; an error naming `fname` for
-- anything else.
local function timer_of(self, fname)
  local ud = type(self) == "table" and rawget(self, UD)
  if not ud then
    error(fname .. ": timer expected, got " .. type(self), 3)
  end
  return ud
end

function Timer:stop()
  local stopped = checked(2, timer_stop(timer_of(self, "timer:stop")))
  if stopped and self.task then pending[self.task] = nil end
  return stopped
end

function Timer:reset(d)
  local ud = timer_of(self, "timer:reset")
  if self.task then pending[self.task] = self.f end
  return call(timer_reset(ud, d))
end

-- Called in tail position by time.timer/ticker, and by time.after.
local function new_timer(d, new, level, mt)
  local ud, ch = checked(level or 2, new(d))
  return setmetatable({ c = ch, [UD] = ud }, mt or Timer)
end

local timer_new, ticker_new, after_new = P.timer_new, P.ticker_new, P.after_new
function time.timer(d) return new_timer(d, timer_new) end
function time.ticker(d) return new_timer(d, ticker_new, 2, Ticker) end
function time.after(d) return new_timer(d, after_new, 3).c end

local afterfunc_new = P.afterfunc_new
function time.afterfunc(d, f)
  if type(f) ~= "function" then
    error("time.afterfunc: function expected, got " .. type(f), 2)
  end
  -- afterfunc_new records f in pending before its timer can fire
  local ud, task = checked(2, afterfunc_new(d, pending, f))
  return setmetatable({ [UD] = ud, task = task, f = f }, Timer)
end

local function run_task(task)
  local f = pending[task]
  pending[task] = nil
  if f then go(f) end
end

---------------------------------------------------------------- sync

local sync = {}

sync.waitgroup, sync.mutex = P.waitgroup, P.mutex
sync.rwmutex, sync.semaphore = P.rwmutex, P.semaphore

local Once = {}
Once.__index = Once
function sync.once()
  return setmetatable({ m = sync.mutex(), done = false }, Once)
end

-- Like Go's Once.Do: other callers wait until the first call returns; a
-- call that raises still counts as done.
function Once:call(f)
  if self.done then return end
  if type(f) ~= "function" then
    error("once:call: function expected, got " .. type(f), 2)
  end
  self.m:lock()
  if self.done then self.m:unlock() return end
  local ok, e = pcall(f)
  self.done = true
  self.m:unlock()
  if not ok then error(e, 0) end
end

---------------------------------------------------------------- runtime

local runtime = {
  id = P.id,
  numgoroutine = P.numgoroutine,
  gomaxprocs = wrap(P.gomaxprocs),
  gc = P.gc,
  stats = P.stats,
  interrupt = wrap(P.interrupt),
  setlabel = wrap(P.setlabel),
  flightrecord = wrap(P.flightrecord),
  goroutines = P.goroutines,
}

-- runtime.leaks() / runtime.reclaim(): the check runs while the caller
-- waits here (its actor's probe runs between its other goroutines' turns).
local leaks_start, reclaim_start = P.leaks_start, P.reclaim_start
function runtime.leaks() return (leaks_start():recv()) end
function runtime.reclaim() return (reclaim_start():recv()) end

-- runtime.ps(): one line per goroutine (id, actor, state and how long,
-- created by, labels), as a process listing; returned too.
local ps = P.ps
function runtime.ps()
  local out = ps()
  print(out)
  return out
end

-- Where no yield reaches the M (inside a C call), gosched does nothing
-- and goexit cannot leave.
local can_park = P.can_park
function runtime.gosched() if can_park() then co_yield(SCHED, KIND_GOSCHED) end end
-- goexit unwinds the goroutine (its <close> handlers run), uncatchable.
runtime.goexit = P.goexit

-- os.exit ends the runtime, not the process: the `lugo` command exits
-- with the status, an embedding host gets it as the outcome. The calling
-- goroutine stops here.
local exit = P.exit
function os.exit(code, close)
  checked(2, exit(code, close))
  if can_park() then co_yield(SCHED, KIND_EXIT) end
end

-- runtime.stack(true) covers every actor: the others are asked for
-- their dumps (each M answers between two goroutines' turns, on a channel
-- of its own), and waited for a second at most (an actor whose goroutine
-- is in a blocking call cannot answer until it returns).
local raw_stack, ask_dumps = P.stack, P.ask_dumps
local DUMP_WAIT = 1
function runtime.stack(all)
  local mine = raw_stack(all and true or false, traceback(nil, 2))
  if not all or not can_park() then return mine end
  local parts = { mine }
  for _, a in ipairs(ask_dumps()) do
    local i, d = raw_select({ "recv", a.c }, { "recv", time.after(DUMP_WAIT) })
    parts[#parts + 1] = i == 1 and d
      or ("actor " .. a.id .. ": no answer within " .. DUMP_WAIT .. " s (a goroutine in a blocking call?)\n")
  end
  return table.concat(parts, "\n")
end

---------------------------------------------------------------- the host's functions

-- Raw functions that answer `ERR, message` for a failure, raised here at
-- the caller as a plain string. A blocking one runs with the M's P marked
-- as in a blocking call (stdlib/src/blocking.rs, which also stands in for
-- io.read, io.lines, os.execute and a file's read and lines).
local blocking = P.blocking
local function plain(_, f)
  return function(...) return call(f(...)) end
end
local function blocks_raw(name, f)
  return function(...) return call(blocking(name, f, ...)) end
end

---------------------------------------------------------------- context

-- The blocking calls given a context (`ch:recv(ctx)`, `ch:send(v, ctx)`,
-- `time.sleep(d, ctx)`): their C functions hand the call here, where it
-- is a select with the context's done channel. When the context ends
-- first: recv gives nil, false, ctx:err(); send and sleep false,
-- ctx:err() (a send that lost did not send). Otherwise recv gives v, ok;
-- send and sleep true.
local context = { background = P.context_background }
local done_of = P.context_done_of

local function done_or_raise(ctx, fname)
  local done = done_of(ctx)
  if not done then
    -- Level 4: past recv_ctx and the C function that handed it the call.
    error(fname .. ": context expected, got " .. type(ctx), 4)
  end
  return done
end

local function recv_ctx(ch, ctx)
  local done = done_or_raise(ctx, "ch:recv")
  local i, v, ok = raw_select({ "recv", ch }, { "recv", done })
  if i == 1 then return v, ok end
  return nil, false, ctx:err()
end

local function send_ctx(ch, v, ctx)
  local done = done_or_raise(ctx, "ch:send")
  if raw_select({ "send", ch, v }, { "recv", done }) == 1 then return true end
  return false, ctx:err()
end

local function sleep_ctx(d, ctx)
  local done = done_or_raise(ctx, "time.sleep")
  local err = ctx:err()
  if err then return false, err end
  if d <= 0 then return true end
  local t = time.timer(d)
  if raw_select({ "recv", t.c }, { "recv", done }) == 1 then return true end
  -- Cut short: its timer goes now, not at its deadline.
  t:stop()
  return false, ctx:err()
end

---------------------------------------------------------------- groups

-- sync.group([ctx]): Go's errgroup. Its goroutines (g:go) share a context
-- (g:context()) cancelled by the first error any of them raises, by
-- g:cancel([cause]), by the parent context, or when g:wait() returns.
-- g:wait() waits for them all and returns the first error, or nil.
-- g:setlimit(n) bounds how many run at once (g:go waits for a place).
-- g:setgrace(s): members still running s seconds after the context ends
-- are interrupted (runtime.interrupt: running or parked, at once; their
-- <close> handlers run, pcall does not catch it).
local Group = { __metatable = "group", __lugo = "group" }
Group.__index = Group
local interrupt = P.interrupt
local getmetatable, pairs, next, math_type = getmetatable, pairs, next, math.type

local function group_arg(g, fname)
  if getmetatable(g) ~= "group" or type(g) ~= "table" or rawget(g, "wg") == nil then
    error(fname .. ": group expected, got " .. type(g), 3)
  end
end

function sync.group(ctx)
  if ctx ~= nil and not done_of(ctx) then
    error("sync.group: context expected, got " .. type(ctx), 2)
  end
  local gctx, cancel = (ctx or context.background()):withcancel()
  return setmetatable({
    ctx = gctx, cancel_ = cancel, wg = sync.waitgroup(), members = {},
    waited = false, err = nil, sem = nil, watching = false,
  }, Group)
end

-- Interrupts the members still there `grace` seconds after the group's
-- context ends (started once, by setgrace).
local function watch(g, grace)
  go(function()
    g.ctx:done():recv()
    time.sleep(grace)
    for id in pairs(g.members) do interrupt(id) end
  end)
end

function Group:go(f, ...)
  group_arg(self, "group:go")
  if type(f) ~= "function" then
    error("group:go: function expected, got " .. type(f), 2)
  end
  if self.waited then error("sync.group: go after wait", 2) end
  if self.sem then self.sem:acquire() end
  self.wg:add(1)
  local id
  id = go(function(...)
    -- Runs however the member ends: returned, raised, interrupted.
    local _ <close> = setmetatable({}, { __close = function()
      self.members[id] = nil
      if self.sem then self.sem:release() end
      self.wg:done()
    end })
    local ok, err = pcall(f, ...)
    if not ok and self.err == nil then
      self.err = err
      self.cancel_(err)
    end
  end, ...)
  self.members[id] = true
  return id
end

function Group:wait()
  group_arg(self, "group:wait")
  self.waited = true
  self.wg:wait()
  self.cancel_()
  return self.err
end

function Group:context()
  group_arg(self, "group:context")
  return self.ctx
end

function Group:cancel(cause)
  group_arg(self, "group:cancel")
  self.cancel_(cause)
end

function Group:setlimit(n)
  group_arg(self, "group:setlimit")
  if math_type(n) ~= "integer" or n < 1 then
    error("group:setlimit: n must be a positive integer, got " .. tostring(n), 2)
  end
  if next(self.members) then
    error("group:setlimit: the limit must be set before any goroutine starts", 2)
  end
  self.sem = sync.semaphore(n)
end

function Group:setgrace(seconds)
  group_arg(self, "group:setgrace")
  if type(seconds) ~= "number" or seconds ~= seconds or seconds < 0 then
    error("group:setgrace: seconds must be a non-negative number, got " .. tostring(seconds), 2)
  end
  if self.watching then error("group:setgrace: the grace is set already", 2) end
  self.watching = true
  watch(self, seconds)
end

-- `wg:wait(ctx)`, `mu:lock(ctx)`, `sem:acquire([k], ctx)`: true once done,
-- or false, ctx:err() when the context ends first. The wait itself runs in
-- a helper goroutine (`take`, which sends on `got` when it holds what it
-- waited for); given up, a second helper waits for it and gives back what
-- it took (`give_back`): nothing is held for a caller that left.
local function wait_for(ctx, done, take, give_back)
  local err = ctx:err()
  if err then return false, err end
  local got = chan(1)
  go(take, got)
  if raw_select({ "recv", got }, { "recv", done }) == 1 then return true end
  go(function() got:recv() give_back() end)
  return false, ctx:err()
end

local function nothing() end

local function wait_ctx(wg, ctx)
  local done = done_or_raise(ctx, "waitgroup:wait")
  return wait_for(ctx, done, function(got) wg:wait() got:send(true) end, nothing)
end

local function lock_ctx(m, ctx)
  local done = done_or_raise(ctx, "mutex:lock")
  if ctx:err() == nil and m:trylock() then return true end
  return wait_for(ctx, done, function(got) m:lock() got:send(true) end,
    function() m:unlock() end)
end

local function acquire_ctx(s, k, ctx)
  if ctx == nil then k, ctx = 1, k end
  local done = done_or_raise(ctx, "semaphore:acquire")
  if math.type(k) ~= "integer" then
    error("semaphore:acquire: count must be an integer, got " .. type(k), 3)
  end
  if ctx:err() == nil and s:tryacquire(k) then return true end
  return wait_for(ctx, done, function(got) s:acquire(k) got:send(true) end,
    function() s:release(k) end)
end

---------------------------------------------------------------- install

local net = { listen = P.net_listen, dial = P.net_dial, lookup = P.net_lookup, udp = P.net_udp }
local actor = { spawn = P.actor_spawn, self = P.actor_self }

_G.go, _G.chan, _G.time, _G.sync, _G.runtime, _G.net = go, chan, time, sync, runtime, net
_G.actor = actor
_G.context = context
package.loaded.context = context
package.loaded.net = net
package.loaded.actor = actor
package.loaded.chan = chan
package.loaded.time = time
package.loaded.sync = sync
package.loaded.runtime = runtime

---------------------------------------------------------------- the host

-- A goroutine the host waits for (a task): its results, or its error's
-- message and traceback, go to `taskdone` instead of the panic path (the
-- body, taskmain, is C as gomain is).
local taskmain, taskdone = P.taskmain, P.taskdone
local function task(f, ...)
  return spawn(co_create(taskmain), taskdone, f, ...)
end

-- A host function that answers later, from a host thread: `start` hands
-- the call to the host and returns the channel its answer comes on,
-- { true, results..., n = } or { false, message }.
local unpack = table.unpack
local function answered(name, start)
  return function(...)
    local r = checked(2, start(...)):recv()
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 2)
  end
end

-- A spawned actor's body: what it returns is kept for `h:wait()`.
local actor_return = P.actor_return
local function actor_main(f, ...)
  return actor_return(f(...))
end

return {
  run_task = run_task, go = go, task = task, actor_main = actor_main,
  recv_ctx = recv_ctx, send_ctx = send_ctx, sleep_ctx = sleep_ctx,
  wait_ctx = wait_ctx, lock_ctx = lock_ctx, acquire_ctx = acquire_ctx,
  plain = plain, blocks = blocks_raw, answered = answered,
  describe = P.describe,
}
