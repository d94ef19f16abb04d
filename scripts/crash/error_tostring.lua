-- an error value with __tostring is printed through it, as lua.c does
go(function()
  error(setmetatable({}, { __tostring = function() return "custom error object" end }))
end)
chan():recv()
