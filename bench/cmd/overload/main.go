// Command overload runs the overload scenario once and prints its table:
// 256 callers against a loopback host whose latency grows with its
// concurrency past a knee and which answers 503 beyond a cap.
//
//	go run ./cmd/overload
package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/resilient-go/resilient/bench"
)

func main() {
	callers := flag.Int("callers", 256, "concurrent callers")
	warm := flag.Duration("warm", 5*time.Second, "warm-up, not measured")
	d := flag.Duration("d", 15*time.Second, "measured time per stack")
	only := flag.String("stack", "", "run only the stacks whose name holds this")
	flag.Parse()
	srv := bench.DefaultKneeServer
	fmt.Printf("host: %v up to %d in flight, ×(c/%d)² past it, 503 beyond %d; %d callers; goal p99 ≤ %v\n\n",
		srv.Base, srv.Knee, srv.Knee, srv.Cap, *callers, 2*srv.Base)
	fmt.Println("| stack | goodput (2xx/s) | p50 | p99 | refused by the client | 503 from the host |")
	fmt.Println("|---|---:|---:|---:|---:|---:|")
	for _, s := range bench.OverloadStacks {
		if !strings.Contains(s.Name, *only) {
			continue
		}
		r := bench.Overload(s, srv, *callers, *warm, *d)
		fmt.Printf("| %s | %.0f | %v | %v | %d | %d |\n", s.Name, r.Goodput,
			r.P50.Round(100*time.Microsecond), r.P99.Round(100*time.Microsecond), r.Refused, r.Shed)
	}
}
