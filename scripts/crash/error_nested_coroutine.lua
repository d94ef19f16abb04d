-- an error raised inside a coroutine.wrap generator in a goroutine, after a
-- park, propagates out of the goroutine like any other error
go(function()
  local gen = coroutine.wrap(function()
    time.sleep(0.001)
    error("boom in generator")
  end)
  gen()
end)
chan():recv()
