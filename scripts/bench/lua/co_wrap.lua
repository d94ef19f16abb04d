-- co_wrap.lua: a bare coroutine.wrap resume/yield round trip, 5M times.
local gen = coroutine.wrap(function()
  local yield = coroutine.yield
  while true do yield(1) end
end)
local s = 0
for _ = 1, 5000000 do s = s + gen() end
assert(s == 5000000)
