package main

// fanin: as fanin.lua's lugo half. 100 producer goroutines each send
// 1..PER (PER = 10k, 1k quick) on one channel of capacity 128; main receives
// all 100*PER and checks the sum. Figure: values/s, best of reps.
func fanin() {
	const p = 100
	total := size(1000000, 100000)
	per := total / p
	want := p * (per * (per + 1) / 2)
	info("fanin: producers=%d total=%d reps=%d", p, p*per, reps())
	t := bestTime("go", func() {
		ch := make(chan int, 128)
		producer := func() {
			for i := 1; i <= per; i++ {
				ch <- i
			}
		}
		for k := 0; k < p; k++ {
			go producer()
		}
		sum := 0
		for k := 0; k < p*per; k++ {
			sum += <-ch
		}
		if sum != want {
			panic("fanin: bad sum")
		}
	})
	peer("fanin", "rate", float64(p*per)/t, "values/s")
}
