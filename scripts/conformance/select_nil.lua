-- A case on a nil channel never fires (Go's rule), so the merge idiom
-- works: receive from both until each is closed, setting the finished one
-- to nil. A send case on nil does not read its value; other kinds of
-- non-channel are still errors.

local a, b = chan(), chan()
go(function() for i = 1, 3 do a:send("a" .. i) end a:close() end)
go(function() for i = 1, 2 do b:send("b" .. i) end b:close() end)
local got = {}
while a or b do
  local case, v, ok = chan.select({ "recv", a }, { "recv", b })
  if not ok then
    if case == 1 then a = nil else b = nil end
  else
    got[#got + 1] = v
  end
end
table.sort(got)
assert(table.concat(got, " ") == "a1 a2 a3 b1 b2", table.concat(got, " "))

-- Only nil cases and a default: the default, at its position.
local none
assert(chan.select({ "recv", none }, { "send", none, {} }, { "default" }) == 3)

-- A nil case beside a ready one: the ready one, numbered by position.
local c = chan(1)
c:send(42)
local case, v = chan.select({ "send", none, 1 }, { "recv", c }, { "recv", none })
assert(case == 2 and v == 42)

-- A send case on nil beside a receive that is woken later.
local d = chan()
go(function() d:send("late") end)
case, v = chan.select({ "send", none, "never" }, { "recv", d })
assert(case == 2 and v == "late")

-- Still errors: a case on something that is neither a channel nor nil.
local ok, err = pcall(chan.select, { "recv", 5 })
assert(not ok and err:find("chan.select: case 1: channel expected, got number", 1, true), err)
ok, err = pcall(chan.select, { "recv", none }, { "recv", {} })
assert(not ok and err:find("case 2: channel expected, got table", 1, true), err)
print("ok")
