-- What a leak check leaves behind: dumps mark the goroutines it found
-- leaked ([chan send, leaked]) and runtime.goroutines() says `leaked`,
-- for as long as each stays in the park it was judged in; one that is
-- woken loses the mark; a goroutine that is not leaked never has it.

local leaks = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/leaks.lua")

local function lost()
  local c = chan()
  return go(function() c:send(1) end)
end
keep = chan()
local a, b = lost(), lost()
local held = go(function() keep:recv() end)
leaks.settle({ a, b, held })

local function marked()
  local m = {}
  for _, g in ipairs(runtime.goroutines()) do
    if g.leaked then m[#m + 1] = g.id end
  end
  table.sort(m)
  return table.concat(m, ",")
end
assert(marked() == "", "no check yet: no mark")

local found = runtime.leaks()
assert(leaks.ids(found)[1] == a and leaks.ids(found)[2] == b and #found == 2)
assert(marked() == a .. "," .. b, marked())

local dump = runtime.stack(true)
assert(dump:find("goroutine " .. a .. " [chan send, leaked]", 1, true), dump)
assert(dump:find("goroutine " .. b .. " [chan send, leaked]", 1, true), dump)
assert(dump:find("goroutine " .. held .. " [chan receive]", 1, true), dump)

-- `held` woken: it ends; the marks of the others stay. A reclaim ends
-- them: no mark is left.
keep:send(1)
runtime.reclaim()
local t0 = time.now()
while runtime.numgoroutine() > 1 and time.now() - t0 < 5 do time.sleep(0.001) end
assert(runtime.numgoroutine() == 1)
assert(marked() == "")
print("ok")
