-- concat.lua: tostring and table.concat over 200k values, five times.
for _ = 1, 5 do
  local parts = {}
  for i = 1, 200000 do parts[i] = tostring(i) .. ":" .. tostring(i * 0.5) end
  assert(#table.concat(parts, ",") > 0)
end
