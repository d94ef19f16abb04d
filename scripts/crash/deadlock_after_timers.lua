-- pending timers are not a deadlock; once they have fired and nothing can
-- wake main any more, it is
local ch = chan()
go(function()
  time.sleep(0.05)
end)
time.afterfunc(0.02, function() end)
ch:recv()
