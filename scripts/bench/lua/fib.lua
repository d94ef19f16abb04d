-- fib.lua: recursive calls, fib(30) three times.
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
for _ = 1, 3 do assert(fib(30) == 832040) end
