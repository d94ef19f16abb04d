-- select_default.lua: {"default"} makes chan.select non-blocking.

-- nothing ready: the default case runs, and select returns its index
local a, b = chan(), chan(1)
local i = chan.select({ "recv", a }, { "recv", b }, { "default" })
assert(i == 3, "default chosen, got " .. tostring(i))
i = chan.select({ "default" })
assert(i == 1, "a select with only a default returns at once")
i = chan.select({ "default" }, { "recv", a })
assert(i == 1, "default may come first")
i = chan.select({ "recv", a }, { "default" }, { "send", a, 1 })
assert(i == 2, "default in the middle")

-- a ready case always wins over default
b:send("v")
local v, ok
i, v, ok = chan.select({ "recv", a }, { "recv", b }, { "default" })
assert(i == 2 and v == "v" and ok == true)
for _ = 1, 200 do
  b:send(1)
  assert(chan.select({ "recv", b }, { "default" }) == 1, "ready recv beats default")
end
for _ = 1, 200 do
  assert(chan.select({ "send", b, 1 }, { "default" }) == 1, "ready send beats default")
  b:recv()
end

-- non-blocking send: full buffer -> default, room -> sent
b:send("full")
assert(chan.select({ "send", b, "x" }, { "default" }) == 2)
assert(b:recv() == "full")
assert(chan.select({ "send", b, "x" }, { "default" }) == 1)
assert(b:recv() == "x")

-- non-blocking on an unbuffered channel: default unless a partner waits
assert(chan.select({ "send", a, 1 }, { "default" }) == 2, "no receiver: default")
assert(chan.select({ "recv", a }, { "default" }) == 2, "no sender: default")
local got = chan(1)
go(function() got:send((a:recv())) end)
-- poll until the receiver is parked on a; each poll either hands the value
-- over (the receiver waits) or takes the default
local deadline = time.now() + 5
while chan.select({ "send", a, "polled" }, { "default" }) ~= 1 do
  assert(time.now() < deadline, "a waiting receiver makes a non-blocking send succeed")
  time.sleep(0.001)
end
assert(got:recv() == "polled")
go(function() a:send("from sender") end)
deadline = time.now() + 5
while true do
  i, v, ok = chan.select({ "recv", a }, { "default" })
  if i == 1 then break end
  assert(time.now() < deadline, "a waiting sender makes a non-blocking recv succeed")
  time.sleep(0.001)
end
assert(v == "from sender" and ok == true)

-- a closed channel is ready: nil, false rather than default
local closed = chan()
closed:close()
i, v, ok = chan.select({ "recv", closed }, { "default" })
assert(i == 1 and v == nil and ok == false)

-- a recv handler does not run when default is taken
local ran = false
i = chan.select({ "recv", a, function() ran = true end }, { "default" })
assert(i == 2 and not ran)

-- a polling loop (non-blocking select + gosched) lets a producer run
local prod = chan(1)
go(function() prod:send("produced") end)
deadline = time.now() + 5
repeat
  i, v = chan.select({ "recv", prod }, { "default" })
  if i == 2 then
    assert(time.now() < deadline)
    runtime.gosched()
  end
until i == 1
assert(v == "produced")

print("ok")
