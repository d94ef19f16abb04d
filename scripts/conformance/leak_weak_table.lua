-- runtime.leaks(), case 12: a channel reachable only as a key or a value
-- of a weak table (weak keys, weak values, both) that a global holds is
-- not leaked: a weak reference counts as a reference for the check (the
-- script may still read the table). The check leaves the weak tables as
-- they were: the channel is still there, and waking the waiter through
-- it works. Once the table is dropped, the waiter is leaked.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

WEAK_K = setmetatable({}, { __mode = "k" })
WEAK_V = setmetatable({}, { __mode = "v" })
WEAK_KV = setmetatable({}, { __mode = "kv" })

-- A waiter on a fresh channel that `put` stores in a weak table.
local function waiter(put)
  local ch = chan()
  put(ch)
  return go(function() ch:recv() end)
end

local control = go(function() chan():recv() end)
local wk = waiter(function(ch) WEAK_K[ch] = "key" end)
local wv = waiter(function(ch) WEAK_V[1] = ch end)
local wkv = waiter(function(ch) WEAK_KV[ch] = ch end)
-- Weak-keyed entries whose value is a table holding the channel (an
-- ephemeron: the value is kept while the key is reachable): with a key a
-- global holds, not leaked; with a key nothing holds, the entry is
-- cleared by the collection below, and the waiter is leaked then.
KEY = {}
local we = waiter(function(ch) WEAK_K[KEY] = { ch } end)
local wcleared = waiter(function(ch) WEAK_K[{}] = { ch } end)
local all = { control, wk, wv, wkv, we, wcleared }
leaks.settle(all, "chan receive")
collectgarbage()
collectgarbage()

local want = { control, wcleared }
leaks.check(want, "weak tables held by globals")

-- The entries are still there, and they wake their waiters.
local n = 0
for k, v in pairs(WEAK_K) do
  if v == "key" then k:send(1) n = n + 1 end
end
WEAK_K[KEY][1]:send(4)
WEAK_V[1]:send(2)
for k in pairs(WEAK_KV) do k:send(3) n = n + 1 end
assert(n == 2, "the weak-keyed entries survived the check")
leaks.gone(wk)
leaks.gone(wv)
leaks.gone(wkv)
leaks.gone(we)

-- A fresh waiter, then its table dropped: leaked.
local w2 = waiter(function(ch) WEAK_V[2] = ch end)
leaks.settle({ w2 }, "chan receive")
leaks.check(want, "a weak value again")
WEAK_V = nil
leaks.check({ w2, table.unpack(want) }, "the weak table dropped")
print("ok")
