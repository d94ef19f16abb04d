-- sandbox.lua: run in a sandboxed state after the prelude, it removes what
-- an untrusted script must not reach: files, processes and the environment
-- (`io`, `os` but its clock, `loadfile`, `dofile`, `require` of files and C
-- libraries), the network (`net`: a host that wants to offer it gives its
-- own functions), the `debug` library, and binary chunks (`load` reads text
-- only). The prelude keeps what it captured (debug.traceback for reports).

local raw_load, select = load, select

io, debug, loadfile, dofile, net = nil, nil, nil, nil, nil
os = { time = os.time, clock = os.clock }

local loaded = package.loaded
loaded.io, loaded.debug, loaded.net, loaded.os = nil, nil, nil, os
package.loadlib, package.searchpath = nil, nil -- searchpath opens files
package.path, package.cpath = "", ""
-- `require` finds only what the host put in package.preload.
package.searchers = { package.searchers[1] }

function load(chunk, name, _, ...)
  if select("#", ...) > 0 then
    return raw_load(chunk, name, "t", (...))
  end
  return raw_load(chunk, name, "t")
end
