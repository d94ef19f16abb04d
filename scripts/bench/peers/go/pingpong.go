package main

// pingpong: as pingpong.lua's lugo half. Two goroutines; ping sends i on the
// unbuffered channel a and waits for the echo on the unbuffered channel b,
// pong echoes; 1M round trips (100k quick); main waits on a done channel.
// Figure: ns per round trip, best of reps.
func pingpong() {
	n := size(1000000, 100000)
	info("pingpong: N=%d reps=%d", n, reps())
	t := bestTime("go", func() {
		a, b, done := make(chan int), make(chan int), make(chan bool)
		go func() {
			for i := 1; i <= n; i++ {
				a <- i
				if v := <-b; v != i {
					panic("pingpong: bad echo")
				}
			}
			done <- true
		}()
		go func() {
			for j := 0; j < n; j++ {
				b <- <-a
			}
		}()
		<-done
	})
	peer("pingpong", "round_trip", t/float64(n)*1e9, "ns")
}
