-- An interrupt races a receive in another actor, 1,000 times: a sender
-- parked on a shared channel is interrupted while the receiver, running
-- in parallel, takes its value. Either the value is received (once, in
-- its own round) or the send was withdrawn; a sender that went past its
-- send always had its value received. Nothing hangs.

runtime.gomaxprocs(2)
local N = 1000
local ch = chan()
local rounds, replies = chan(), chan(1)
local receiver = actor.spawn(function(ch, rounds, replies)
  while true do
    local ctx = rounds:recv()
    if not ctx then return end
    local v = ch:recv(ctx)
    replies:send(v or false)
  end
end, ch, rounds, replies)

local started, ended, sent = chan(1), chan(1), chan(1)
local received, withdrawn = 0, 0
for i = 1, N do
  local id = go(function()
    local _ <close> = setmetatable({}, { __close = function() ended:send(true) end })
    started:send(true)
    ch:send(i)
    sent:send(i)
  end)
  -- Started, its handler in place (one interrupted before its first
  -- instruction would run none).
  started:recv()
  local ctx, cancel = context.background():withcancel()
  rounds:send(ctx)
  for _ = 1, math.random(0, 200) do end
  runtime.interrupt(id)
  ended:recv()
  cancel()
  local got = replies:recv()
  local went_on = chan.select({ "recv", sent }, { "default" }) == 1
  assert(got == i or got == false, ("round %d received %s"):format(i, tostring(got)))
  assert(not went_on or got == i, ("round %d: sent but not received"):format(i))
  if got then received = received + 1 else withdrawn = withdrawn + 1 end
end
rounds:close()
assert(receiver:wait() == true)
assert(received + withdrawn == N)
-- Nothing was left behind on the channel.
assert(chan.select({ "recv", ch }, { "default" }) == 2)
print("ok")
