-- tablefill.lua: fill a table with 2M values, three times.
for _ = 1, 3 do
  local t = {}
  for i = 1, 2000000 do t[i] = i end
  assert(#t == 2000000)
end
