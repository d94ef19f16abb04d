-- strings.lua: string building, formatting and pattern matching.
local parts = {}
for i = 1, 300000 do parts[#parts + 1] = string.format("%d:%s", i, ("x"):rep(i % 7)) end
local s = table.concat(parts, ",")
local n = 0
for _ in s:gmatch("%d+:x+") do n = n + 1 end
assert(n > 0)
local u = s:sub(1, 100000):upper():lower()
assert(#u == 100000)
