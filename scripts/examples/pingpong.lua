-- Two goroutines hit a ball back and forth over unbuffered channels.
local ping, pong = chan(), chan()
local rounds = tonumber(arg and arg[1]) or 5

go(function()
  for ball in ping:range() do
    print("pong", ball)
    pong:send(ball + 1)
  end
end)

local ball = 0
for _ = 1, rounds do
  ping:send(ball)
  ball = pong:recv()
  print("ping", ball)
end
ping:close()

-- select with a timeout
local i = chan.select({ "recv", pong }, { "recv", time.after(0.05) })
print(i == 2 and "no more pongs: timed out" or "unexpected pong")
