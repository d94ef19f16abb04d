-- box_reuse.lua: a C method knows the boxes it has checked before by
-- their address (stdlib/src/cfn.rs, `StateInner::seen`: the last two of
-- each type). A box that is collected is forgotten before its block is
-- freed, and a known address is still checked for its type's magic: a
-- later object of another type may get the same block, and a channel
-- method given it must still say "channel expected", not take it for the
-- channel that lived there. Boxes of every type have the same size, so the
-- allocator hands freed blocks to new boxes; the script checks that it
-- did (the path was reached) and that every misuse was refused. (Tried:
-- without both the forgetting and the magic check, it fails.)

local send, recv = chan().send, chan().recv
local reused, refused = 0, 0
for _ = 1, 30 do
  local known = {}
  do
    local a, b = chan(1), chan(1)
    a:send(1) b:send(2)          -- checked last: their addresses are known
    assert(a:recv() == 1 and b:recv() == 2)
    known[string.format("%p", a)] = true
    known[string.format("%p", b)] = true
  end
  collectgarbage()
  collectgarbage()               -- their __gc ran and their blocks are free
  local others = {}
  for i = 1, 4096 do
    others[i] = (i % 2 == 0) and sync.waitgroup() or sync.mutex()
  end
  for _, other in ipairs(others) do
    if known[string.format("%p", other)] then reused = reused + 1 end
    local ok, e = pcall(send, other, 1)
    assert(not ok and e:find("channel expected", 1, true), e)
    ok, e = pcall(recv, other)
    assert(not ok and e:find("channel expected", 1, true), e)
    refused = refused + 2
  end
  local wg, m = others[2], others[1]
  wg:add(1) wg:done() wg:wait()  -- and they still work as themselves
  m:lock() m:unlock()
end
assert(refused == 30 * 4096 * 2)
assert(reused > 0, "no freed channel block was reused: the test did not reach its path")
io.stderr:write("box_reuse: ", reused, " new objects got a freed channel's block\n")
print("ok")
