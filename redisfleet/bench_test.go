package redisfleet_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/ratelimit"
	"github.com/resilient-go/resilient/redisfleet"
)

// BenchmarkLimiterWait is the cost of one Wait that does not have to wait:
// golang.org/x/time/rate per host (package ratelimit) against a fleet's
// leased share, its background renewals included, and against a fleet
// without Redis.
func BenchmarkLimiterWait(b *testing.B) {
	req := mustRequest(b, "http://a.test/")
	local := ratelimit.New(1e9, 1e6)
	noRedis := redisfleet.New(nil)
	defer noRedis.Close()
	run := newRun(b)
	leased := run.replica(0, redisfleet.Quota{Limit: 1e9}, time.Second).limit
	if err := leased.Wait(b.Context(), req); err != nil { // the first lease
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		l    resilient.Limiter
	}{
		{"local x-time-rate", local},
		{"fleet leased", leased},
		{"fleet without Redis", noRedis.Limiter(redisfleet.Quota{Limit: 1e9})},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.l.Wait(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(bc.name+" parallel", func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := bc.l.Wait(ctx, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkFourReplicas runs 4 replicas × 64 callers for 3 s against a
// partner that allows 100 requests/s (counted after a first half
// second) and answers 429 with Retry-After: 1
// over it. Run it once: go test -run xxx -bench FourReplicas -benchtime 1x.
//
//   - local 100/s: each replica limits itself to the partner's quota, as
//     one process alone would (package ratelimit), with its own gate;
//   - local 25/s: the quota split by hand, which holds only while exactly
//     four replicas run;
//   - fleet: one quota of 100/s leased across the replicas, gates and
//     breakers shared.
func BenchmarkFourReplicas(b *testing.B) {
	const d = 3 * time.Second
	for _, bc := range []struct {
		name  string
		local float64 // the local limit; 0: the fleet's quota
	}{
		{"local 100/s", 100},
		{"local 25/s", 25},
		{"fleet", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				run := newRun(b)
				p := newPartner(b, 100)
				p.setRetryAfter("1")
				var reps []*replica
				for i := range 4 {
					retry := resilient.WithRetry(resilient.RetryPolicy{})
					if bc.local > 0 {
						reps = append(reps, run.replica(i, redisfleet.Quota{}, time.Second, retry,
							resilient.WithLimiter(ratelimit.New(bc.local, int(bc.local/10)))))
					} else {
						reps = append(reps, run.replica(i, redisfleet.Quota{Limit: 100}, time.Second, retry))
					}
				}
				// One run of 3.5 s, measured after the first half second: a
				// second run would start behind the reservations that the
				// first one's callers left when they were cancelled.
				var okAt, overAt atomic.Int64
				warm := time.AfterFunc(500*time.Millisecond, func() { okAt.Store(p.ok.Load()); overAt.Store(p.over.Load()) })
				st := loadStats(b.Context(), reps, 64, p, d+500*time.Millisecond)
				warm.Stop()
				b.ReportMetric(float64(p.ok.Load()-okAt.Load())/d.Seconds(), "2xx/s")
				b.ReportMetric(float64(p.over.Load()-overAt.Load()), "429s-sent")
				b.ReportMetric(float64(st.over), "429s-returned")
				b.ReportMetric(float64(st.failed), "errors-returned")
			}
		})
	}
}
