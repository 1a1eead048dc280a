package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

// TestCancelEndsCallOnStalledRedis: a call whose context is cancelled
// (the sender hung up, the handler stopped a renewal) returns then, not at
// the context's deadline: go-redis's ContextTimeoutEnabled watches only
// deadlines, so the store must watch the cancellation itself.
func TestCancelEndsCallOnStalledRedis(t *testing.T) {
	for _, ctxTimeout := range []bool{false, true} {
		addr := stalledRedis(t)
		rc := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: ctxTimeout, MaxRetries: -1,
			ReadTimeout: 2 * time.Second})
		t.Cleanup(func() { rc.Close() })
		s := redisstore.New(rc)
		held := webhook.Claim{Key: "k", Token: "t", Result: webhook.Claimed}
		calls := map[string]func(context.Context) error{
			"Claim":    func(ctx context.Context) error { _, err := s.Claim(ctx, "k", time.Second); return err },
			"Extend":   func(ctx context.Context) error { return s.Extend(ctx, held, time.Second) },
			"Complete": func(ctx context.Context) error { return s.Complete(ctx, held, time.Hour) },
			"Release":  func(ctx context.Context) error { return s.Release(ctx, held) },
		}
		for name, call := range calls {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			stop := time.AfterFunc(20*time.Millisecond, cancel)
			err := call(ctx)
			stop.Stop()
			cancel()
			if !errors.Is(err, context.Canceled) || errors.Is(err, os.ErrDeadlineExceeded) {
				t.Errorf("ContextTimeoutEnabled=%v: %s = %v, want context.Canceled, not a socket timeout at the deadline", ctxTimeout, name, err)
			}
		}
	}
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
