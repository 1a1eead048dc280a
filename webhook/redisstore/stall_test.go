package redisstore_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

// stalledRedis listens on loopback, accepts connections and reads from
// them, but never answers: a Redis that hangs. It stops when t ends.
func stalledRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestDeadline: every call returns the context's error once it is done,
// whether or not the client watches contexts itself, against a Redis that
// hangs. (Without the store's own bound, a client without
// ContextTimeoutEnabled would wait its 5 s ReadTimeout and return an i/o
// timeout instead.)
func TestDeadline(t *testing.T) {
	for _, ctxTimeout := range []bool{false, true} {
		addr := stalledRedis(t)
		rc := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: ctxTimeout, MaxRetries: -1})
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
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			err := call(ctx)
			cancel()
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("ContextTimeoutEnabled=%v: %s = %v, want context.DeadlineExceeded", ctxTimeout, name, err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := s.Claim(ctx, "k", time.Second); !errors.Is(err, context.Canceled) {
			t.Errorf("Claim on a canceled context = %v, want context.Canceled", err)
		}
	}
}
