package main

import (
	"math"
	"math/rand"
	"sync"
	"time"
)

// sleepersRun: common.lua's sleepers. n goroutines, each time.Sleep(d) for
// a uniformly random d in 0..maxsleep (seed 42; Go's generator, so not
// lugo's sequence of d, the same distribution). Lateness of one = the time
// it runs again minus (time.Now() just before the sleep + d), in ms.
// Returns the wall seconds from the first go to wg.Wait returning, and the
// sorted lateness.
func sleepersRun(n int, maxsleep float64) (float64, []float64) {
	r := rand.New(rand.NewSource(42))
	late := make([]float64, n)
	var wg sync.WaitGroup
	wg.Add(n)
	sleeper := func(i int, d time.Duration) {
		deadline := time.Now().Add(d)
		time.Sleep(d)
		late[i] = float64(time.Since(deadline)) / 1e6
		wg.Done()
	}
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go sleeper(i, time.Duration(r.Float64()*maxsleep*1e9))
	}
	wg.Wait()
	wall := time.Since(t0).Seconds()
	sortFloats(late)
	return wall, late
}

// sleepers100k: as sleepers_100k.lua. 100k sleepers (10k quick) of
// 0..100 ms; best wall of reps runs and the p99 lateness of that run.
func sleepers100k() {
	n := size(100000, 10000)
	info("sleepers: N=%d max sleep 100 ms, best of %d runs", n, reps())
	wall := math.Inf(1)
	var s summary
	for r := 1; r <= reps(); r++ {
		fullGC()
		w, late := sleepersRun(n, 0.100)
		info("run %d: wall %.3f s", r, w)
		if w < wall {
			wall, s = w, summarize(late)
		}
	}
	info("lateness ms: min %.3f mean %.3f p50 %.3f p99 %.3f max %.3f", s.min, s.mean, s.p50, s.p99, s.max)
	peer("sleepers100k", "wall", wall, "s")
	peer("sleepers100k", "p99_late", s.p99, "ms")
}

// sleepers1k: as sleepers_1k.lua. A 10 ms warm-up sleep, a full GC, then
// one run of 1k sleepers of 0..100 ms: mean and p99 lateness.
func sleepers1k() {
	const n = 1000
	time.Sleep(10 * time.Millisecond)
	fullGC()
	info("sleepers: N=%d max sleep 100 ms", n)
	wall, late := sleepersRun(n, 0.100)
	s := summarize(late)
	info("wall %.3f s; lateness ms: min %.3f mean %.3f p50 %.3f p99 %.3f max %.3f", wall, s.min, s.mean, s.p50, s.p99, s.max)
	peer("sleepers1k", "mean_late", s.mean, "ms")
	peer("sleepers1k", "p99_late", s.p99, "ms")
}
