-- floor_pingpong.lua: the least a ping-pong round trip can cost in PUC Lua
-- when each goroutine switch is a coroutine resume/yield and each channel
-- operation a C method call, with no scheduler and no channel at all: two
-- coroutines each make two C method calls (`s:len()`, looked up through
-- the string metatable's __index table as `ch:send` is through a
-- channel's) and yield; a loop resumes them in turn.
--
--   lugo --plain scripts/bench/peers/floor_pingpong.lua    (or lua5.4)
--
-- Prints `PEER name=pingpong metric=floor value=<ns> unit=ns`, best of 3.
local N = tonumber(os.getenv("LUGO_BENCH_QUICK") == "1" and 200000 or 2000000)
local s = "x"
local resume, yield = coroutine.resume, coroutine.yield
local function side() while true do s:len(); s:len(); yield() end end
local co1, co2 = coroutine.create(side), coroutine.create(side)
local best = math.huge
for _ = 1, 3 do
  local t0 = os.clock()
  for _ = 1, N do resume(co1); resume(co2) end
  best = math.min(best, os.clock() - t0)
end
print(string.format("PEER name=pingpong metric=floor value=%.1f unit=ns", best / N * 1e9))
