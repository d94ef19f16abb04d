-- hooks_preempted.lua: a script's hooks behave as in plain Lua while
-- sysmon preempts it many times (the suite's db.lua, lines 308-337, in a
-- loop): a line hook set after a preemption sees every line, from the
-- first (a preemption's yield leaves no stale mark on the frame), and
-- debug.gethook and debug.sethook see and set the script's own hook, never
-- lugo's (inside a hook, where a preemption comes due while hooks are
-- off, and right after debug.sethook). Several goroutines, one of them in
-- a nested coroutine, run the loop at once with CPU work in between, so
-- each is preempted many times (sysmon preempts after 10 ms of running);
-- they go on until there were enough preemptions, in a bounded number of
-- rounds.

local WORK = 3000 -- loop steps between hooked blocks (where most preemptions land)

local MAX_ROUNDS = 20000 -- per goroutine, a few seconds at most
local ENOUGH = 40 -- preemptions, of all goroutines together
local before = runtime.stats().preemptions
local function preempted() return runtime.stats().preemptions - before end

-- Rounds until there were ENOUGH preemptions (checked every 100 rounds).
local function rounds()
  local bad = {}
  for i = 1, MAX_ROUNDS do
    if i % 100 == 0 and preempted() >= ENOUGH then break end
    -- a line hook that looks at itself: 4 lines, in a row
    local count, lines = 0, {}
    local function f(ev, line)
      assert(ev == "line")
      local x = 0
      for j = 1, WORK // 10 do x = x + j end -- a preemption may come due here
      local hf, m, c = debug.gethook()
      if hf ~= f or m ~= "l" or c ~= 0 then
        bad[#bad + 1] = ("round %d: gethook in a hook: %s %s %s"):format(i, tostring(hf), m, c)
      end
      count = count + 1
      lines[#lines + 1] = line
    end
    debug.sethook(f, "l")
    local a = 0 -- one instruction: its line event is the one a stale mark took
    local hf, m, c = debug.gethook()
    local right = hf == f and m == "l" and c == 0
    debug.sethook()
    if not right then
      bad[#bad + 1] = ("round %d: gethook after sethook: %s %s %s"):format(i, tostring(hf), m, c)
    end
    if count ~= 4 or lines[4] - lines[1] ~= 3 then
      bad[#bad + 1] = ("round %d: %d line events (%s)"):format(i, count, table.concat(lines, ","))
    end

    -- a hook that takes itself off is called once (not put back by lugo)
    local calls = 0
    debug.sethook(function()
      calls = calls + 1
      local x = 0
      for j = 1, WORK // 10 do x = x + j end
      debug.sethook()
    end, "l")
    local y = 1
    y = y + 1
    y = y + 1
    if calls ~= 1 or debug.gethook() then
      bad[#bad + 1] = ("round %d: a hook that took itself off ran %d times"):format(i, calls)
    end

    -- call, return and line events, and their mask, as db.lua's hook wants
    local events = 0
    debug.sethook(function(e)
      local _, m2, c2 = debug.gethook()
      if m2 ~= "crl" or c2 ~= 0 then
        bad[#bad + 1] = ("round %d: gethook in a crl hook: %s %s"):format(i, m2, c2)
      end
      events = events + 1
    end, "crl")
    local z = math.abs(-1)
    debug.sethook()
    if events < 3 then
      bad[#bad + 1] = ("round %d: %d crl events"):format(i, events)
    end
    if debug.gethook() then
      bad[#bad + 1] = ("round %d: a hook left after debug.sethook()"):format(i)
    end

    -- no hook: CPU work, in this same frame
    local x = 0
    for j = 1, WORK do x = x + j end
  end
  return bad
end

local results = chan(8)
local n = 0
for k = 1, 3 do
  n = n + 1
  go(function() results:send({ k, rounds() }) end)
end
n = n + 1
go(function()
  local gen = coroutine.wrap(function() coroutine.yield(rounds()) end)
  results:send({ "coroutine", gen() })
end)
local all = { { "main", rounds() } }
for _ = 1, n do all[#all + 1] = results:recv() end

local report = {}
for _, r in ipairs(all) do
  for _, b in ipairs(r[2]) do report[#report + 1] = tostring(r[1]) .. ": " .. b end
end
assert(#report == 0, #report .. " failures:\n" .. table.concat(report, "\n", 1, math.min(#report, 20)))
assert(preempted() >= ENOUGH, "preempted only " .. preempted() .. " times")
print("ok")
