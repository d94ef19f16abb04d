-- require.lua: each lugo module is also available through require, as the
-- very same table as the global; Lua modules can use goroutines.

assert(require("time") == time, 'require "time" is the global time')
assert(require("sync") == sync, 'require "sync" is the global sync')
assert(require("runtime") == runtime, 'require "runtime" is the global runtime')
assert(require("chan") == chan, 'require "chan" is the global chan')
assert(package.loaded.time == time)
assert(package.loaded.sync == sync)
assert(package.loaded.runtime == runtime)
assert(package.loaded.chan == chan)
-- the other modules of the API, where this build has them
for _, name in ipairs({ "net", "actor" }) do
  if _G[name] ~= nil then
    assert(require(name) == _G[name], "require '" .. name .. "' is the global")
  end
end
-- the standard library is untouched
assert(require("string") == string and require("table") == table)
assert(require("coroutine") == coroutine)
assert(type(select) == "function" and select("#", 1, 2) == 2,
  "the global select keeps its Lua meaning")

-- require inside a goroutine gives the same tables
local res = chan()
go(function()
  res:send({ require("time"), require("sync"), require("runtime"), require("chan") })
end)
local r = res:recv()
assert(r[1] == time and r[2] == sync and r[3] == runtime and r[4] == chan)

-- functions taken from the required table work
local rtime = require "time"
local t0 = rtime.now()
rtime.sleep(0.001)
assert(rtime.now() > t0)

-- a Lua module (next to this script, in lib/) that uses goroutines
local dir = (arg and arg[0] and arg[0]:match("^(.*)[/\\]")) or "."
package.path = dir .. "/lib/?.lua;" .. package.path
local helper = require("conformance_helper")
assert(helper.loaded_by == 1, "loaded by main")
assert(require("conformance_helper") == helper, "loaded once")
assert(helper.next_id() == 1 and helper.next_id() == 2)
local sum = 0
for v in helper.squares(10):range() do sum = sum + v end
assert(sum == 385)

-- the module is usable from goroutines
go(function() res:send(helper.next_id()) end)
assert(res:recv() == 3)

print("ok")
