-- an error value whose metatable is protected (__metatable) is still
-- printed through its __tostring, as lua.c does
error(setmetatable({}, {
  __tostring = function() return "protected error object" end,
  __metatable = "locked",
}))
