-- an uncaught error in the main goroutine: Go's panic report, exit 2
local function f()
  error("boom")
end
f()
