-- an error whose value is a table without __tostring, worded as lua.c does
error({ code = 1 })
