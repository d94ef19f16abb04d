-- errors_args.lua: bad arguments raise Lua errors (catchable with pcall)
-- whose message names the function. Every case is checked; all failures
-- are reported together.

local failures = {}

local function fail(msg)
  failures[#failures + 1] = msg
end

-- `name` must appear as a word: "go" in "'go'" or "`go`", not in "got"
local function names(err, name)
  local pat = "%f[%w_]" .. name:gsub("%p", "%%%0") .. "%f[^%w_]"
  return string.find(err, pat) ~= nil
end

local function expect_error(what, name, f, ...)
  local ok, err = pcall(f, ...)
  if ok then
    fail(what .. ": no error raised")
    return
  end
  if type(err) ~= "string" then
    fail(what .. ": the error value is a " .. type(err) .. " (" .. tostring(err)
      .. "), not a string")
    err = tostring(err)
  end
  if not names(err, name) then
    fail(what .. ": error '" .. err .. "' does not name '" .. name .. "'")
  end
end

local ch = chan(1)

-- chan
expect_error("chan(-1)", "chan", chan, -1)
expect_error('chan("x")', "chan", chan, "x")
expect_error("chan({})", "chan", chan, {})
expect_error("chan(true)", "chan", chan, true)

-- go
expect_error("go(1)", "go", go, 1)
expect_error("go()", "go", go)
expect_error('go("f")', "go", go, "f")
expect_error("go({})", "go", go, {})

-- chan.select
expect_error('select({"bogus", ch})', "select", chan.select, { "bogus", ch })
expect_error("select(1)", "select", chan.select, 1)
expect_error('select("recv")', "select", chan.select, "recv")
-- A case without a channel is a case on nil: it never fires (Go's rule).
assert(chan.select({ "recv" }, { "send" }, { "default" }) == 3)
expect_error('select({"recv", 42})', "select", chan.select, { "recv", 42 })
expect_error('select({"send", {}, 1})', "select", chan.select, { "send", {}, 1 })
expect_error("select({})", "select", chan.select, {})
expect_error('select({"recv", ch}, {"bogus"})', "select", chan.select,
  { "recv", ch }, { "bogus" })

-- time
expect_error('time.sleep("x")', "time.sleep", time.sleep, "x")
expect_error("time.sleep()", "time.sleep", time.sleep)
expect_error("time.sleep({})", "time.sleep", time.sleep, {})
expect_error('time.after("x")', "time.after", time.after, "x")
expect_error('time.timer("x")', "time.timer", time.timer, "x")
-- methods called with a wrong self name the method
expect_error("ch.range(42)", "ch:range", ch.range, 42)
local tm = time.timer(3600)
expect_error("t.stop(42)", "timer:stop", tm.stop, 42)
expect_error("t.reset({}, 1)", "timer:reset", tm.reset, {}, 1)
tm:stop()
expect_error('time.ticker("x")', "time.ticker", time.ticker, "x")
expect_error('time.afterfunc("x", f)', "time.afterfunc", time.afterfunc, "x",
  function() end)
expect_error("time.afterfunc(1, 2)", "time.afterfunc", time.afterfunc, 1, 2)

-- runtime
expect_error('runtime.gomaxprocs("x")', "gomaxprocs", runtime.gomaxprocs, "x")

-- methods called on the wrong object
expect_error("ch.send(42, 1)", "send", ch.send, 42, 1)
expect_error("ch.recv({})", "recv", ch.recv, {})
expect_error("ch.close('x')", "close", ch.close, "x")

-- sync
local wg = sync.waitgroup()
expect_error('wg:add("x")', "add", wg.add, wg, "x")
local once = sync.once()
expect_error("once:call(1)", "call", once.call, once, 1)

-- errors raised inside a goroutine are caught there, the same way
local res = chan()
go(function()
  local ok, err = pcall(chan, -1)
  res:send({ ok, tostring(err) })
end)
local r = res:recv()
if r[1] ~= false or not names(r[2], "chan") then
  fail("chan(-1) in a goroutine: " .. tostring(r[1]) .. " " .. r[2])
end

-- the runtime works normally after all these errors
local c = chan()
go(function() c:send("still fine") end)
if c:recv() ~= "still fine" then fail("channels after errors") end

assert(#failures == 0, #failures .. " failure(s):\n  " .. table.concat(failures, "\n  "))
print("ok")
