-- error(nil), worded as lua.c does
error(nil)
