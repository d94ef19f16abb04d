-- chan.select() with no case blocks forever; alone, that is a deadlock
chan.select()
