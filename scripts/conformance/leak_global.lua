-- runtime.leaks(), case 1: a channel reachable only through a global is
-- not leaked while the main goroutine runs (the main goroutine, or any
-- code, may still use the global). The same holds for a local of the
-- running main chunk and for a field of a table a global holds; once the
-- global lets go of it, its waiter is leaked.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

GLOBAL = chan()
NESTED = { deep = { ch = chan() } }
local mine = chan()
local ids = {
  go(function() GLOBAL:recv() end),
  go(function() NESTED.deep.ch:send("x") end),
  go(function() mine:recv() end),
}
-- A control: a channel nothing holds. It alone is leaked, which shows
-- the check ran.
local control = go(function() chan():recv() end)
leaks.settle(ids)
leaks.settle({ control }, "chan receive")
leaks.check({ control }, "global, table in a global, main's local")
-- Asking again gives the same answer.
leaks.check({ control }, "again")

-- The global lets go: its waiter is leaked now, and nothing else is.
GLOBAL = nil
leaks.check({ control, ids[1] }, "global set to nil")
NESTED.deep = nil
leaks.check({ control, ids[1], ids[2] }, "table field set to nil")

-- The main chunk's local still holds its channel: waking the waiter
-- through it works (the check changed nothing).
mine:send("wake")
leaks.gone(ids[3])
leaks.check({ control, ids[1], ids[2] }, "after the wake-up")
print("ok")
