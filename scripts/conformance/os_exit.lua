-- os_exit.lua: os.exit from a goroutine ends the whole program at once with
-- its status, while main is still blocked (and goroutines still run).
-- The harness sees status 0 and the "ok" printed just before.

go(function()
  while true do time.sleep(0.001) end
end)
go(function()
  chan():recv()
end)
go(function()
  time.sleep(0.01)
  print("ok")
  os.exit(0)
end)
chan():recv() -- blocks until os.exit ends the program
error("not reached: os.exit did not end the program")
