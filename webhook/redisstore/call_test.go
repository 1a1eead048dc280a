package redisstore_test

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

// TestCallsEndWhenContextCancelledOnStalledRedis: a call whose context is
// cancelled (the sender hung up, the handler stopped a renewal) returns
// then, not at the context's deadline: go-redis's ContextTimeoutEnabled
// watches only deadlines, so the store must watch the cancellation itself.
func TestCallsEndWhenContextCancelledOnStalledRedis(t *testing.T) {
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

// TestTokenCheckedCallsRetryWithinTheirContext: against a Redis gone for
// good, Complete tries again until its context ends and says so; without
// a deadline it gives up after a bounded number of runs, with the last
// failure.
func TestTokenCheckedCallsRetryWithinTheirContext(t *testing.T) {
	rc := redis.NewClient(&redis.Options{Addr: closedPort(t), ContextTimeoutEnabled: true, MaxRetries: -1,
		DialerRetries: 1})
	t.Cleanup(func() { rc.Close() })
	s := redisstore.New(rc)
	held := webhook.Claim{Key: "k", Token: "t", Result: webhook.Claimed}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := s.Complete(ctx, held, time.Hour)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Complete with Redis gone = %v, want DeadlineExceeded", err)
	}
	var opErr *net.OpError
	err = s.Complete(context.Background(), held, time.Hour)
	if errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &opErr) {
		t.Fatalf("Complete without a deadline, Redis gone = %v, want the *net.OpError", err)
	}
}
