package pgstore_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
)

// measure runs op b.N times from conc goroutines and reports, beside
// ns/op, the throughput (unit/s) and the 99th percentile latency of one op.
func measure(b *testing.B, conc int, unit string, op func() error) {
	var (
		mu  sync.Mutex
		all []time.Duration
	)
	b.ReportAllocs()
	b.SetParallelism(max(1, conc/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var d []time.Duration
		for pb.Next() {
			start := time.Now()
			if err := op(); err != nil {
				b.Error(err)
				return
			}
			d = append(d, time.Since(start))
		}
		mu.Lock()
		all = append(all, d...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit+"/s")
}

// benchStore is a store on a pool of 32 connections, enough for the
// concurrent benchmarks.
func benchStore(b *testing.B) (*pgstore.Store, *pgxpool.Pool) {
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	cfg.MaxConns = 32
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	s, _ := newStoreOn(b, pool)
	return s, pool
}

// BenchmarkClaim measures the store on loopback: a Claim of a new key (the
// INSERT, one commit each), a Claim of a key that is done (a redelivery:
// a read, no write), and the Claim+Complete of every processed event, from
// one caller and from 32.
func BenchmarkClaim(b *testing.B) {
	ctx := context.Background()
	var n atomic.Int64
	key := func() string { return fmt.Sprintf("%064d", n.Add(1)) }
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("op=claim/conc=%d", conc), func(b *testing.B) {
			s, _ := benchStore(b)
			measure(b, conc, "claims", func() error {
				c, err := s.Claim(ctx, key(), time.Minute)
				if err == nil && c.Result != webhook.Claimed {
					err = fmt.Errorf("Claim = %v", c.Result)
				}
				return err
			})
		})
		b.Run(fmt.Sprintf("op=claim-done/conc=%d", conc), func(b *testing.B) {
			s, _ := benchStore(b)
			k := key()
			c, err := s.Claim(ctx, k, time.Minute)
			if err == nil {
				err = s.Complete(ctx, c, time.Hour)
			}
			if err != nil {
				b.Fatal(err)
			}
			measure(b, conc, "claims", func() error {
				c, err := s.Claim(ctx, k, time.Minute)
				if err == nil && c.Result != webhook.Done {
					err = fmt.Errorf("Claim = %v", c.Result)
				}
				return err
			})
		})
		b.Run(fmt.Sprintf("op=claim+complete/conc=%d", conc), func(b *testing.B) {
			s, _ := benchStore(b)
			measure(b, conc, "events", func() error {
				c, err := s.Claim(ctx, key(), time.Minute)
				if err != nil {
					return err
				}
				return s.Complete(ctx, c, time.Hour)
			})
		})
	}
}

// BenchmarkTransactionalHandler measures one delivery through
// Store.Handler, called directly (no HTTP round trip): verification,
// BEGIN, the dedupe INSERT, a process that inserts one row, COMMIT.
func BenchmarkTransactionalHandler(b *testing.B) {
	for _, conc := range []int{1, 32} {
		b.Run(fmt.Sprintf("conc=%d", conc), func(b *testing.B) {
			s, pool := benchStore(b)
			fx := effects(b, pool)
			h := s.Handler(verifier(b), func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
				_, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES ($1)", e.ID)
				return err
			})
			var n atomic.Int64
			measure(b, conc, "deliveries", func() error {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, delivery(b, "/", fmt.Sprint("evt_", n.Add(1)), `{"n":1}`))
				if w.Code != http.StatusOK {
					return fmt.Errorf("status %d", w.Code)
				}
				return nil
			})
		})
	}
}
