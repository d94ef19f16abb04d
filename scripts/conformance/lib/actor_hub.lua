-- actor_hub.lua: the actors stress test (tests/actors.rs): N actors each
-- exchange M messages with a hub in main; every value is checked.
--   lugo scripts/conformance/lib/actor_hub.lua N M
local N, M = tonumber(arg[1]) or 1000, tonumber(arg[2]) or 1000
local t0 = time.now()
local hub = chan(256)
local replies = {}
local handles = {}
for i = 1, N do
  replies[i] = chan(16)
  handles[i] = actor.spawn(function(id, hub, reply, m)
    local sum = 0
    for k = 1, m do
      hub:send({ from = id, k = k, payload = { k, k * 2 } })
      local r = reply:recv()
      assert(r.k == k and r.echo[2] == k * 2, "bad reply")
      sum = sum + r.k
    end
    return sum
  end, i, hub, replies[i], M)
end
local total = 0
for _ = 1, N * M do
  local msg = hub:recv()
  assert(msg.payload[1] == msg.k)
  replies[msg.from]:send({ k = msg.k, echo = msg.payload })
  total = total + 1
end
for i = 1, N do assert(handles[i]:wait() == true) end
print(string.format("%d actors x %d messages: %.2fs, %d round trips, actors alive %d", N, M, time.now() - t0, total, runtime.stats().actors))
