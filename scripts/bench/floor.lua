-- floor.lua: the baseline ("floor") scheduler for the benchmarks.
--
-- A minimal cooperative round-robin scheduler written in plain Lua with
-- coroutine.create/resume/yield, plus a bounded queue whose send parks when
-- full and whose recv parks when empty (the shape of a buffered channel).
-- It runs in the same Lua state and the same binary as the lugo workload, so
-- the gap between the two is what lugo's machinery costs over the cheapest
-- thing one could write by hand. It does nothing lugo must do and plain Lua
-- need not: no preemption, no timers, no select, no cross-actor wake-ups.
--
--   local S = dofile(dir .. "floor.lua").new()
--   local q = S.queue(128)
--   S.spawn(function() q:send(1) end)
--   S.spawn(function() print(q:recv()) end)
--   S.run()            -- returns when no coroutine is runnable

local create, resume, yield, running =
  coroutine.create, coroutine.resume, coroutine.yield, coroutine.running

-- FIFO of coroutines: head/tail indices, reset when empty so the indices
-- stay small and the table keeps using its array part.
local function fifo() return { h = 1, t = 0 } end

local function push(f, v)
  local t = f.t + 1
  f.t = t
  f[t] = v
end

local function pop(f)
  local h = f.h
  if h > f.t then return nil end
  local v = f[h]
  f[h] = nil
  if h == f.t then f.h, f.t = 1, 0 else f.h = h + 1 end
  return v
end

local floor = {}

function floor.new()
  local S = {}
  local runq = fifo()

  function S.spawn(fn) push(runq, create(fn)) end

  -- Resume runnable coroutines in FIFO order until none is left. A
  -- coroutine that parks is not in the run queue; whoever wakes it puts it
  -- back.
  function S.run()
    while true do
      local co = pop(runq)
      if co == nil then return end
      local ok, err = resume(co)
      if not ok then error(err, 0) end
    end
  end

  -- Bounded queue: a ring buffer of `cap` slots and two wait queues.
  function S.queue(cap)
    local buf, head, n = {}, 0, 0      -- items are buf[head+1 .. head+n] mod cap
    local recvq, sendq = fifo(), fifo()
    local q = {}

    function q:send(v)
      while n >= cap do                 -- full: park until a recv makes room
        push(sendq, running())
        yield()
      end
      buf[(head + n) % cap + 1] = v
      n = n + 1
      local r = pop(recvq)
      if r then push(runq, r) end
    end

    function q:recv()
      while n == 0 do                   -- empty: park until a send
        push(recvq, running())
        yield()
      end
      local i = head + 1
      local v = buf[i]
      buf[i] = nil
      head = i % cap
      n = n - 1
      local s = pop(sendq)
      if s then push(runq, s) end
      return v
    end

    return q
  end

  return S
end

return floor
