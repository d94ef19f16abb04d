-- values_kept.lua: a value is received exactly once, as what was sent, or
-- its sending is refused (issue "Sound and bounded", item 7).

-- Values buffered in a channel before it reaches a second actor: the
-- actor that sent them gets the very same values back; another actor
-- gets copies.
local t1, t2 = { name = "one" }, { name = "two" }
local c = chan(4)
c:send(t1)
c:send(t2)
local go_on, out = chan(), chan(1)
local h = actor.spawn(function(c, go_on, out)
  go_on:recv()
  out:send(c:recv().name)
end, c, go_on, out)
assert(rawequal(c:recv(), t1), "the sender gets its own table back")
go_on:send(true)
assert(out:recv() == "two", "the other actor gets a copy")
assert(h:wait())
assert(c:len() == 0)

-- ... and a buffered value that cannot be copied keeps the channel local:
-- the sending fails with the reason, and nothing changes
local f = function() return 42 end
local c2 = chan(2)
c2:send(f)
local ok, err = pcall(actor.spawn, function() end, c2)
assert(not ok and err:find("cannot send channel at arg1: its buffer holds a value of this actor that cannot be copied", 1, true)
  and err:find("cannot send a function", 1, true), err)
local g = c2:recv()
assert(g == f and g() == 42, "the function comes out as it went in")
c2:send(t1) -- still a local channel: references
assert(c2:recv() == t1)

-- A select parked sending on a channel that becomes shared: its value
-- goes to the other actor as a copy, exactly once.
local c3 = chan()
local sent = chan(1)
go(function()
  local i = chan.select({ "send", c3, { n = 7 } })
  sent:send(i)
end)
runtime.gosched()
local got = chan(1)
local h3 = actor.spawn(function(c3, got) got:send(c3:recv().n) end, c3, got)
assert(got:recv() == 7)
assert(sent:recv() == 1)
assert(h3:wait())

-- A user's coroutine parked on a channel inside one goroutine cannot be
-- resumed or closed by another: the value later sent reaches it.
local c4, out = chan(), chan(1)
local co
go(function()
  co = coroutine.create(function() return c4:recv() end)
  local ok, v = coroutine.resume(co)
  out:send({ ok, v })
end)
runtime.gosched()
-- held by the scheduler: active elsewhere, as Lua calls a coroutine that
-- resumed another ("normal")
assert(coroutine.status(co) == "normal")
local rok, rerr = coroutine.resume(co, "made up")
assert(rok == false and rerr == "cannot resume a coroutine parked in chan receive", rerr)
local cok, cerr = pcall(coroutine.close, co)
assert(not cok and cerr:find("cannot close a coroutine parked in chan receive", 1, true), cerr)
c4:send("real")
local r = out:recv()
assert(r[1] == true and r[2] == "real", "the real value, once")

-- the same through coroutine.wrap
local c5, out5 = chan(), chan(1)
local w
go(function()
  w = coroutine.wrap(function() return c5:recv() end)
  out5:send(w())
end)
runtime.gosched()
local wok, werr = pcall(w)
assert(not wok and werr:find("cannot resume a coroutine parked in chan receive", 1, true), werr)
c5:send("for the wrap")
assert(out5:recv() == "for the wrap")

print("ok")
