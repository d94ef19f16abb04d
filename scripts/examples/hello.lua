-- Goroutines and channels: a tiny worker pool.
local jobs, results = chan(16), chan(16)

for _ = 1, 3 do
  go(function()
    for n in jobs:range() do
      results:send(string.format("%d squared is %d", n, n * n))
    end
  end)
end

for n = 1, 5 do jobs:send(n) end
jobs:close()

local lines = {}
for _ = 1, 5 do lines[#lines + 1] = results:recv() end
table.sort(lines)
for _, l in ipairs(lines) do print(l) end
print("hello from lugo, " .. runtime.numgoroutine() .. " goroutines alive")
