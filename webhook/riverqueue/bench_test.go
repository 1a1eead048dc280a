package riverqueue_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

// benchSenders is how many deliveries are in flight at once.
const benchSenders = 32

// slowWork is how long processing one event takes.
const slowWork = 200 * time.Millisecond

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// BenchmarkAck measures how fast a receiver acknowledges deliveries when
// processing an event takes 200 ms: riverqueue.Handler (200 once the job is
// queued; River workers do the 200 ms in the background) next to the inline
// webhook.Handler (200 once processed). 32 senders over loopback, each
// event distinct; metrics: acks/s and p50/p99 acknowledgement latency.
func BenchmarkAck(b *testing.B) {
	b.Run("riverqueue", func(b *testing.B) {
		s := newSchema(b)
		process := func(ctx context.Context, _ pgx.Tx, _ webhook.Event) error { return sleepCtx(ctx, slowWork) }
		cfg := s.config(workers(riverqueue.NewWorker(process)))
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 6}}
		// Workers on a pool of their own: their 200 ms transactions hold
		// connections. Stopping them at the end leaves the backlog queued.
		newClient(b, s.pool(b), cfg)
		receiver := newClient(b, s.pool(b), s.config(nil))
		ackBench(b, riverqueue.Handler(receiver, verifier(b)))
	})
	b.Run("inline", func(b *testing.B) {
		process := func(ctx context.Context, _ webhook.Event) error { return sleepCtx(ctx, slowWork) }
		ackBench(b, webhook.Handler(verifier(b), process))
	})
}

// ackBench sends b.N distinct signed deliveries to h from benchSenders
// goroutines and reports acks/s and the latency percentiles of the 200s.
func ackBench(b *testing.B, h http.Handler) {
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: benchSenders}
	b.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr}
	run := fmt.Sprintf("%d", time.Now().UnixNano())

	var next atomic.Int64
	lat := make([][]time.Duration, benchSenders)
	var failed atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for g := range benchSenders {
		wg.Go(func() {
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				id := fmt.Sprintf("evt_%s_%d", run, i)
				req := delivery(b, srv.URL, id, body(id, "bench"))
				t0 := time.Now()
				if send(client, req) != http.StatusOK {
					failed.Add(1)
					continue
				}
				lat[g] = append(lat[g], time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d deliveries not acknowledged", n)
	}
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 { return float64(all[int(p*float64(len(all)-1))]) / float64(time.Millisecond) }
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
