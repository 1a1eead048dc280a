package redisstore_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

// BenchmarkClaim measures the store on the test Redis over loopback: one
// Claim of a new key (what every first delivery costs), and Claim plus
// Complete (a delivery processed to the end), from 1 and from 32
// concurrent callers. It reports claims per second and the p99 latency of
// one operation.
func BenchmarkClaim(b *testing.B) {
	for _, op := range []string{"claim", "claim+complete"} {
		for _, conc := range []int{1, 32} {
			b.Run(fmt.Sprintf("op=%s/conc=%d", op, conc), func(b *testing.B) {
				benchStore(b, op == "claim+complete", conc)
			})
		}
	}
}

func benchStore(b *testing.B, complete bool, conc int) {
	s, _, _ := newStore(b)
	ctx := context.Background()
	var next atomic.Int64
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				key := fmt.Sprintf("%064x", i)
				t0 := time.Now()
				c, err := s.Claim(ctx, key, time.Minute)
				if err == nil && complete {
					err = s.Complete(ctx, c, time.Minute)
				}
				lats[w] = append(lats[w], time.Since(t0))
				if err != nil || c.Result != webhook.Claimed {
					b.Errorf("Claim(%s) = %v, %v", key, c.Result, err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lats...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "claims/s")
}

// BenchmarkClaimWithDeadline: Claim as the handler calls it, on a context
// with a deadline (the store timeout), so the cost of watching the
// context's cancellation is counted.
func BenchmarkClaimWithDeadline(b *testing.B) {
	s, _, _ := newStore(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := s.Claim(ctx, fmt.Sprintf("%064x", i), time.Minute)
		cancel()
		if err != nil || c.Result != webhook.Claimed {
			b.Fatalf("Claim = %v, %v", c.Result, err)
		}
	}
}
