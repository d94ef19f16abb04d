-- os.exit(3) from a goroutine other than main exits at once with status 3
go(function()
  os.exit(3)
end)
chan():recv()
