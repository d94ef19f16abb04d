-- tablefill.lua: table construction, array and hash parts.
local t = {}
for i = 1, 3000000 do t[i] = i * 2 end
local h = {}
for i = 1, 500000 do h["k" .. (i % 50000)] = i end
local s = 0
for i = 1, #t do s = s + t[i] end
assert(s == 3000000 * 3000001)
