-- Seeing inside a running program: runtime.goroutines(), runtime.ps(),
-- runtime.setlabel, and dumps that say how long, who created, labels.

local fails = dofile((arg[0]:match("^(.*/)") or "./") .. "lib/expect.lua").fails

local function by_id()
  local t = {}
  for _, g in ipairs(runtime.goroutines()) do t[g.id] = g end
  return t
end

-- Labels: set on the running goroutine, inherited by what it starts from
-- then on; a child's own labels are its own.
runtime.setlabel("role", "main")
local started = chan(3)
local function worker(ch)
  runtime.setlabel("job", "7")
  started:send(true)
  ch:recv()
end
local wch = chan()
local w = go(worker, wch)                       -- line 22
local s = go(function() started:send(true) time.sleep(60) end)
local a = actor.spawn(function(c) c:recv() end, chan())
started:recv() started:recv()
time.sleep(1.1)

local gs = by_id()
local me = gs[runtime.id()]
assert(me.state == "running" and me.actor == 1 and me.labels.role == "main")
assert(me.parent == nil and me.waiting == nil)

local wg = gs[w]
assert(wg.state == "chan receive", wg.state)
assert(wg.labels.role == "main" and wg.labels.job == "7", "inherited, then its own")
assert(wg.parent == runtime.id())
assert(wg.func == "main chunk")
assert(wg.created_at:match("observe%.lua:22$"), wg.created_at)
-- Parked for 1.1 s: the coarse clock never makes it shorter, and it
-- cannot be older than the program.
assert(wg.waiting >= 1 and wg.waiting < 60, wg.waiting)
assert(gs[s].state == "sleep" and gs[s].labels.job == nil)

-- Another actor's goroutines are listed, without what only its own state
-- knows (who created them).
local other
for _, g in ipairs(runtime.goroutines()) do
  if g.actor ~= 1 then other = g end
end
assert(other and other.state == "chan receive" and other.parent == nil, "the other actor's")

-- A label set again replaces its value; the parent's is unchanged.
runtime.setlabel("role", "boss")
assert(by_id()[runtime.id()].labels.role == "boss")
assert(by_id()[w].labels.role == "main", "a child keeps what it got")

-- runtime.ps(): a header and one line per goroutine.
local listing = runtime.ps()
local lines = {}
for line in listing:gmatch("[^\n]+") do lines[#lines + 1] = line end
assert(lines[1]:match("^ID%s+ACTOR%s+STATE"), lines[1])
assert(#lines == #runtime.goroutines() + 1)
assert(listing:find("chan receive, %d+s%s+goroutine 1 at [^\n]*observe%.lua:22"), listing)

-- runtime.stack(true): the header says how long and the labels; the
-- creator line follows the frames.
local dump = runtime.stack(true)
assert(dump:find("goroutine " .. w .. " %[chan receive, %d+ seconds?%] {role=\"main\", job=\"7\"}:"), dump)
assert(dump:find("created by main chunk in goroutine 1 at [^\n]*observe%.lua:22"), dump)
-- Every actor's goroutines: the other actor's, with what it waits on.
assert(dump:find("goroutine " .. other.id .. " %[chan receive[^\n]*%] %(actor " .. other.actor .. "%):\n"), dump)
-- What it waits on: the channel, its state and its address.
assert(dump:find("\nwaiting on chan%(cap 0, len 0, open%) at 0x%x+\ncreated by main chunk in goroutine 1 at [^\n]*observe%.lua:22"), dump)
local mu = sync.mutex()
mu:lock()
go(function() mu:lock() end)
runtime.gosched()
assert(runtime.stack(true):find("waiting on mutex %(locked%) at 0x"), "a mutex waiter")
mu:unlock()

-- Bad input.
fails(function() runtime.setlabel(1, "x") end, "runtime.setlabel: key must be a string, got number")
fails(function() runtime.setlabel("k") end, "runtime.setlabel: value must be a string, got nil")
fails(function() runtime.setlabel("", "v") end, "runtime.setlabel: key must not be empty")

wch:send(true)
print("ok")
