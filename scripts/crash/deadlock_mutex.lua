-- locking a mutex twice in the same goroutine
local mu = sync.mutex()
mu:lock()
mu:lock()
