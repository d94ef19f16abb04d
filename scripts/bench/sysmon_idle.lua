-- sysmon_idle.lua: what the runtime costs while the program does nothing.
--
-- lugo:     main sleeps (10 s; 2 s in quick mode) with every P idle; the
--           process's CPU time (user + system, from /proc/self/stat) over
--           that sleep, as a share of one core. sysmon deep-sleeps while
--           every P is idle and an idle M waits for the timer.
-- baseline: none: baseline=na.
-- figures:  CPU share of one core in percent, target <= 1 %.

local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local C = dofile(dir .. "common.lua")

local TICKS = 100 -- USER_HZ: clock ticks per second in /proc/<pid>/stat

local function cpu_seconds()
  local f = assert(io.open("/proc/self/stat", "r"))
  local line = f:read("l")
  f:close()
  -- fields after the command name (which may hold spaces): state is 3rd,
  -- utime the 14th and stime the 15th of the whole line
  local rest = line:match("%) (.*)$")
  local fields = {}
  for w in rest:gmatch("%S+") do fields[#fields + 1] = w end
  return (tonumber(fields[12]) + tonumber(fields[13])) / TICKS
end

local secs = C.size(10, 2)
local c0, t0 = cpu_seconds(), time.now()
time.sleep(secs)
local cpu, wall = cpu_seconds() - c0, time.now() - t0
C.info("idle %.2f s: %.3f s of CPU", wall, cpu)
C.result{ name = "sysmon_idle", metric = "cpu_share", unit = "%",
          lugo = 100 * cpu / wall, target = "<=1" }
