-- lib/expect.lua: checks shared by the conformance scripts (not one
-- itself: the harness runs only the .lua files directly in
-- scripts/conformance/). Load it with
--   local expect = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua")

local expect = {}

-- Calls f, which must raise an error whose message contains `want`.
function expect.fails(f, want)
  local ok, e = pcall(f)
  assert(not ok, "expected an error: " .. want)
  assert(e:find(want, 1, true), e)
end

return expect
