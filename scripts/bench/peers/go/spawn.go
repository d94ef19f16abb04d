package main

import "sync"

// spawn: as spawn.lua's lugo half. 200k goroutines (20k quick), each calls
// wg.Done(); main wg.Wait()s. Timed from the first go to Wait returning.
// Figure: goroutines/s, best of reps.
func spawn() {
	n := size(200000, 20000)
	info("spawn: N=%d reps=%d", n, reps())
	t := bestTime("go", func() {
		var wg sync.WaitGroup
		wg.Add(n)
		work := func() { wg.Done() }
		for i := 0; i < n; i++ {
			go work()
		}
		wg.Wait()
	})
	peer("spawn", "rate", float64(n)/t, "goroutines/s")
}
