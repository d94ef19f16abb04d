package main

import (
	"runtime"
	"sync"
)

// parked: as parked.lua's lugo half, in a fresh process (this one).
// 200k goroutines (20k quick), each calls ready.Done() and blocks receiving
// from one unbuffered channel. Measured as parked.lua measures: full GC,
// RSS (/proc/self/statm) before; park them; full GC, RSS after; the delta
// divided by N, in KB (1024 B). The "heap" figure is Go's own accounting of
// what the goroutines hold: the delta of HeapAlloc + StackInuse (the g
// records and sudogs are on the heap, the stacks in stack spans) - Go's
// counterpart of the Lua heap delta that lugo reports.
func parked() {
	n := size(200000, 20000)
	info("parked: N=%d", n)
	var ms runtime.MemStats
	heap := func() float64 {
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc + ms.StackInuse)
	}
	fullGC()
	h0, r0 := heap(), rssBytes()

	ch := make(chan struct{})
	var ready, finished sync.WaitGroup
	ready.Add(n)
	finished.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			ready.Done()
			<-ch
			finished.Done()
		}()
	}
	ready.Wait()
	for i := 0; i < 3; i++ {
		runtime.Gosched() // let the last ones reach the receive
	}
	if g := runtime.NumGoroutine(); g < n+1 {
		panic("parked: too few goroutines alive")
	}
	fullGC()
	h1, r1 := heap(), rssBytes()
	close(ch)
	finished.Wait()

	peer("parked", "rss_per_g", (r1-r0)/1024/float64(n), "KB")
	peer("parked", "heap_per_g", (h1-h0)/1024/float64(n), "KB")
}
