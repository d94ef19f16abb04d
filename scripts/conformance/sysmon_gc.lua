-- sysmon_gc.lua: sysmon asks for collections; the M that owns the actor
-- runs them; runtime.stats() reports them by cause.
local s0 = runtime.stats()
assert(type(s0.gc) == "table")
for _, k in ipairs({ "user", "periodic", "limit", "idle_steps" }) do
  assert(math.type(s0.gc[k]) == "integer", "stats().gc." .. k)
end

-- runtime.gc() is a full cycle asked for by the program
runtime.gc()
local s1 = runtime.stats()
assert(s1.gc.user == s0.gc.user + 1)
assert(s1.gc_cycles == s0.gc_cycles + 1)

-- garbage left behind by a burst of work: while the actor is idle, sysmon
-- asks for incremental steps
collectgarbage("stop") -- only sysmon's steps may collect it now
local junk = {}
for i = 1, 20000 do junk[i] = { i, tostring(i), {} } end
junk = nil
local deadline = time.now() + 3
repeat time.sleep(0.05) until runtime.stats().gc.idle_steps > s1.gc.idle_steps or time.now() > deadline
collectgarbage("restart")
assert(runtime.stats().gc.idle_steps > s1.gc.idle_steps, "an idle actor got an incremental step")

print("ok")
