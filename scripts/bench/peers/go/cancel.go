package main

import (
	"context"
	"sync"
	"time"
)

// cancel: as cancel.lua's first half. N = 10k goroutines (1k quick), each
// parked in a select on ctx.Done() and a channel of its own; main cancels
// the context and waits on a WaitGroup until all have returned. Timed from
// cancel() to Wait's return; figure: ns per goroutine, best of reps.
func cancel() {
	n := size(10000, 1000)
	info("cancel: N=%d reps=%d", n, reps())
	best := 1e18
	for r := 1; r <= reps(); r++ {
		ctx, stop := context.WithCancel(context.Background())
		var ready, ended sync.WaitGroup
		ready.Add(n)
		ended.Add(n)
		for i := 0; i < n; i++ {
			go func() {
				defer ended.Done()
				ch := make(chan int)
				ready.Done()
				select {
				case <-ctx.Done():
				case <-ch:
				}
			}()
		}
		ready.Wait()
		time.Sleep(time.Millisecond) // the last ones reach their select
		t0 := time.Now()
		stop()
		ended.Wait()
		dt := time.Since(t0).Seconds()
		info("go rep %d: %.4f s", r, dt)
		if dt < best {
			best = dt
		}
	}
	peer("cancel", "per_g", best/float64(n)*1e9, "ns")
}
