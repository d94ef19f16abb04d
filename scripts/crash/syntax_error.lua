-- a script that does not compile: lugo reports it as lua.c does, exit 1
local x = = 1
