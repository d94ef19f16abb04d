// The Go peers of lugo's benchmark scripts (scripts/bench/*.lua): the same
// workloads, with the same sizes, written with goroutines, channels,
// sync.WaitGroup and time.Sleep. One binary, one workload per run:
//
//	gopeers pingpong|spawn|parked|fanin|sleepers100k|sleepers1k|cancel
//
// run.sh --peers runs each with GOMAXPROCS=1 and GOMAXPROCS=2. Like the Lua
// scripts it reads LUGO_BENCH_QUICK=1 (the quick sizes) and LUGO_BENCH_REPS
// (repetitions of a timed workload, best kept: 3, 1 when quick). It prints
// `# ...` lines for people and one line per figure,
//
//	PEER name=pingpong metric=round_trip value=123.4 unit=ns
//
// in the unit of lugo's RESULT line for the same figure.
// Built with GO111MODULE=off (Debian's golang-go, no module, no network).
package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

var quick = os.Getenv("LUGO_BENCH_QUICK") == "1"

func size(full, q int) int {
	if quick {
		return q
	}
	return full
}

func reps() int {
	if n, err := strconv.Atoi(os.Getenv("LUGO_BENCH_REPS")); err == nil && n > 0 {
		return n
	}
	if quick {
		return 1
	}
	return 3
}

func info(format string, a ...interface{}) {
	fmt.Printf("# "+format+"\n", a...)
}

func peer(name, metric string, value float64, unit string) {
	fmt.Printf("PEER name=%s metric=%s value=%s unit=%s\n", name, metric, num(value), unit)
}

// num formats as common.lua's num does.
func num(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "na"
	}
	if math.Abs(v) >= 1e4 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// fullGC: two collections, as common.lua's full_gc (no finalizers here,
// but the same shape).
func fullGC() {
	runtime.GC()
	runtime.GC()
}

// bestTime runs f reps() times, each after a full GC, and returns the
// smallest wall time in seconds (the first run doubles as warm-up).
func bestTime(label string, f func()) float64 {
	best := math.Inf(1)
	for r := 1; r <= reps(); r++ {
		fullGC()
		t0 := time.Now()
		f()
		dt := time.Since(t0).Seconds()
		info("%s rep %d: %.4f s", label, r, dt)
		if dt < best {
			best = dt
		}
	}
	return best
}

// rssBytes: resident pages (second field of /proc/self/statm) x 4096, as
// common.lua's rss_bytes.
func rssBytes() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseFloat(f[1], 64)
	if err != nil {
		panic(err)
	}
	return pages * 4096
}

type summary struct{ mean, p50, p99, min, max float64 }

// summarize a sorted sample as common.lua's summary (1-based ceil(p*n)).
func summarize(s []float64) summary {
	n := len(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	pct := func(p float64) float64 {
		i := int(math.Ceil(p * float64(n)))
		if i < 1 {
			i = 1
		}
		return s[i-1]
	}
	return summary{sum / float64(n), pct(0.50), pct(0.99), s[0], s[n-1]}
}

func sortFloats(s []float64) { sort.Float64s(s) }

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gopeers pingpong|spawn|parked|fanin|sleepers100k|sleepers1k|cancel")
		os.Exit(2)
	}
	info("go %s GOMAXPROCS=%d", runtime.Version(), runtime.GOMAXPROCS(0))
	switch os.Args[1] {
	case "pingpong":
		pingpong()
	case "spawn":
		spawn()
	case "parked":
		parked()
	case "fanin":
		fanin()
	case "sleepers100k":
		sleepers100k()
	case "sleepers1k":
		sleepers1k()
	case "cancel":
		cancel()
	default:
		fmt.Fprintln(os.Stderr, "gopeers: unknown workload", os.Args[1])
		os.Exit(2)
	}
}
