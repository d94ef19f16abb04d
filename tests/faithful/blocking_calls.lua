-- The library functions lugo runs as blocking calls (io.read, io.lines,
-- os.execute, a file's read and lines) raise what Lua's raise: positions,
-- names, a method's self not counted. stdin is this file.
local here = arg[0]
local function try(f, ...) print(pcall(f, ...)) end
try(io.read, "x")
try(io.stdin.read, io.stdin, "x")
try(io.lines, "/nonexistent/file")
try(os.execute, {})
try(function() for _ in io.lines(here, "x") do end end)
try(function() io.read("x") end)
try(function() io.stdin:read("x") end)
try(function() io.stdin.read("x") end)
try(function() io.lines("/nonexistent/file") end)
try(function() local f = io.open(here) f:close() f:read() end)
try(function() local f = io.open(here) f:close() f:lines() end)
try(function() for _ in io.stdin:lines("x") do end end)
try(function() os.execute({}) end)
print(select(2, xpcall(io.read, debug.traceback, "x")))
print(select(2, xpcall(function() io.read("x") end, debug.traceback)))
-- and they work
local n = 0
for line in io.lines(here) do n = n + #line end
print(n > 0, io.read("l"), io.stdin:read(5), os.execute("exit 3"))
local f <close> = io.open(here)
for a, b in f:lines(1, 2) do io.write(a, b, "|") break end
print(io.lines(here, "L")())
