-- runtime.leaks(), case 6: two goroutines each waiting on a channel only
-- the other holds (a cycle) are both leaked, while other goroutines run
-- (the main goroutine, and one that loops on runtime.gosched()): they
-- can reach neither channel. Longer cycles and a select in the cycle are
-- leaked too; a cycle that a running goroutine can enter is not.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

STOP = false
local spinner = go(function()
  while not STOP do runtime.gosched() end
end)

-- g1 waits on a, holds b; g2 waits on b, holds a.
local function pair()
  local a, b = chan(), chan()
  local g1 = go(function() a:recv() b:send(1) end)
  local g2 = go(function() b:recv() a:send(1) end)
  return g1, g2
end

-- A ring of n goroutines, each waiting on its channel and holding the
-- next one's; the last one waits in a select.
local function ring(n)
  local chs = {}
  for i = 1, n do chs[i] = chan() end
  local ids = {}
  for i = 1, n do
    local mine, nxt = chs[i], chs[i % n + 1]
    if i == n then
      ids[i] = go(function()
        chan.select({ "recv", mine }, { "recv", chan() })
        nxt:send(i)
      end)
    else
      ids[i] = go(function() mine:recv() nxt:send(i) end)
    end
  end
  return ids
end

local g1, g2 = pair()
local r = ring(5)
-- A pair whose channel a goroutine that can still run holds (the
-- feeder waits on a global channel): not leaked.
ENTRY = chan()
local function entered_pair()
  local a, b = chan(), chan()
  local h1 = go(function() a:recv() b:send(1) end)
  local h2 = go(function()
    if b:recv() ~= 1 then a:send(1) end
  end)
  local feeder = go(function()
    ENTRY:recv()
    a:send("in")
  end)
  return h1, h2, feeder
end
local h1, h2, feeder = entered_pair()
leaks.settle({ g1, g2, h1, h2, feeder }, "chan receive")
leaks.settle(r)
local want = { g1, g2, table.unpack(r) }
leaks.check(want, "cycles while others run")

-- The feeder enters its cycle: both its goroutines finish.
ENTRY:send(true)
leaks.gone(h1)
leaks.gone(h2)
leaks.gone(feeder)
leaks.check(want, "the entered cycle finished")
STOP = true
leaks.gone(spinner)
leaks.check(want, "the spinner ended")
print("ok")
