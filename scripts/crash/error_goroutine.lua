-- an uncaught error in another goroutine kills the program, exit 2
local ch = chan()
go(function()
  time.sleep(0.001)
  error("boom in goroutine")
end)
ch:recv()
