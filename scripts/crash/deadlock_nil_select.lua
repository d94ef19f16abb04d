-- A select whose every case is on a nil channel never fires (Go's rule
-- for nil channels); with no default it parks for good: here, a deadlock.
local none
chan.select({ "recv", none }, { "send", none, 1 })
