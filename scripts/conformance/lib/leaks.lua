-- lib/leaks.lua: helpers shared by the leak_*.lua scripts (not one
-- itself). Load it with
--   local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")
--
-- The rule of those scripts: no false positive comes first, so each check
-- compares the EXACT set of ids runtime.leaks() returns with the ids that
-- go() returned, never "at least".

local leaks = {}

-- Waits until each goroutine of `ids` (program-wide ids, any actor) is
-- parked: in state `state` when one is given, else in any state but
-- running or runnable. Parked state is what a check judges, so a script
-- waits for it rather than for a time.
function leaks.settle(ids, state)
  local t0 = time.now()
  while true do
    local seen = {}
    for _, g in ipairs(runtime.goroutines()) do seen[g.id] = g.state end
    local all = true
    for _, id in ipairs(ids) do
      local s = seen[id]
      if s == nil or s == "running" or s == "runnable" or (state and s ~= state) then
        all = false
        break
      end
    end
    if all then return end
    if time.now() - t0 > 2 then
      local what = {}
      for _, id in ipairs(ids) do what[#what + 1] = id .. "=" .. tostring(seen[id]) end
      error("goroutines did not park" .. (state and (" in " .. state) or "") .. ": "
        .. table.concat(what, " "), 2)
    end
    runtime.gosched()
  end
end

local function sorted(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  return s
end

-- The ids of a list of leak records, sorted.
function leaks.ids(records)
  local s = {}
  for i, r in ipairs(records) do s[i] = r.id end
  return sorted(s)
end

-- Asserts that `records` (what runtime.leaks() or runtime.reclaim()
-- returned) name exactly the goroutines `want` (a list of ids).
function leaks.exactly(records, want, what)
  local got, exp = leaks.ids(records), sorted(want)
  local same = #got == #exp
  for i = 1, #got do same = same and got[i] == exp[i] end
  if not same then
    local lines = {}
    for _, r in ipairs(records) do
      lines[#lines + 1] = string.format("  goroutine %d (actor %d) [%s] on %s\n%s",
        r.id, r.actor, r.state, tostring(r.waiting_on), r.stack)
    end
    error(string.format("%s: leaked {%s}, want {%s}\n%s", what or "leaks",
      table.concat(got, ","), table.concat(exp, ","), table.concat(lines, "\n")), 2)
  end
  -- Records come in id order.
  for i = 2, #records do assert(records[i - 1].id < records[i].id, "records in id order") end
end

-- runtime.leaks() must name exactly `want`.
function leaks.check(want, what)
  leaks.exactly(runtime.leaks(), want, what)
end

-- The record of goroutine `id` in `records`.
function leaks.find(records, id)
  for _, r in ipairs(records) do
    if r.id == id then return r end
  end
end

-- Waits until goroutine `id` has ended (it is gone from
-- runtime.goroutines()).
function leaks.gone(id)
  local t0 = time.now()
  while true do
    local alive = false
    for _, g in ipairs(runtime.goroutines()) do
      if g.id == id then alive = true end
    end
    if not alive then return end
    assert(time.now() - t0 < 2, "goroutine " .. id .. " did not end")
    runtime.gosched()
  end
end

return leaks
