-- preemption_contexts.lua: with one P, a goroutine spinning inside pcall,
-- inside a metamethod, inside a nested generator or in a loop calling a C
-- function still cannot starve a sleeper: sysmon preempts it where Lua can
-- yield, and the spinner's own state is unharmed.
runtime.gomaxprocs(1)

local function sleeper_wakes(spin)
  local stop = false
  local result = chan(1)
  go(function() result:send(spin(function() return stop end)) end)
  local t0 = time.now()
  time.sleep(0.002) -- wakes only if the spinner is preempted
  local waited = time.now() - t0
  stop = true
  return waited, result:recv()
end

local contexts = {
  plain = function(stopped)
    local n = 0
    while not stopped() do n = n + 1 end
    return n > 0
  end,
  pcall = function(stopped)
    local ok, n = pcall(function()
      local n = 0
      while not stopped() do n = n + 1 end
      return n
    end)
    return ok and n > 0
  end,
  metamethod = function(stopped)
    local t = setmetatable({}, { __index = function(_, k)
      local n = 0
      while not stopped() do n = n + 1 end
      return k .. n
    end })
    return t.x ~= nil
  end,
  generator = function(stopped)
    local gen = coroutine.wrap(function()
      local n = 0
      while not stopped() do n = n + 1 end
      coroutine.yield(n)
      coroutine.yield("after")
    end)
    return gen() > 0 and gen() == "after"
  end,
  c_calls = function(stopped)
    local s = 0
    while not stopped() do s = s + #string.rep("x", 10) end
    return s > 0
  end,
}

for name, spin in pairs(contexts) do
  local waited, ok = sleeper_wakes(spin)
  assert(waited < 1, name .. ": the sleeper waited " .. waited .. " s")
  assert(ok == true, name .. ": the spinner's result is wrong")
end

print("ok")
