-- lib/conformance_helper.lua: a module loaded with require by require.lua
-- (not a conformance script itself: the harness runs only the .lua files
-- directly in scripts/conformance/).

local M = {}

M.loaded_by = runtime.id()

-- a module may start goroutines and use channels at load time
local counter = chan()
go(function()
  local n = 0
  while true do
    n = n + 1
    counter:send(n)
  end
end)

function M.next_id()
  return (counter:recv())
end

-- squares of 1..n computed by a pipeline of goroutines
function M.squares(n)
  local out = chan(n)
  local wg = sync.waitgroup()
  local res = {}
  for i = 1, n do
    wg:add(1)
    go(function()
      res[i] = i * i
      wg:done()
    end)
  end
  wg:wait()
  for i = 1, n do out:send(res[i]) end
  out:close()
  return out
end

return M
