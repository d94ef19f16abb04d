-- A goroutine that holds a read lock and asks for the write lock waits
-- for itself: alone, that is a deadlock (Go's RWMutex is not reentrant).
local rw = sync.rwmutex()
rw:rlock()
rw:lock()
