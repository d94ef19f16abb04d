-- co_generator.lua: a generator over 1M items (coroutine.wrap iterator
-- in a generic for), 3 times.
local function range(n)
  return coroutine.wrap(function()
    for i = 1, n do coroutine.yield(i) end
  end)
end
for _ = 1, 3 do
  local s = 0
  for v in range(1000000) do s = s + v end
  assert(s == 1000000 * 1000001 // 2)
end
