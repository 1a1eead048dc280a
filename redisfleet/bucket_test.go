package redisfleet

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/resilient-go/resilient"
)

func TestBucketWaitersQueueAgainAtANewRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket()
		b.setRate(1) // one per second: the fifth waiter would wait 4 s
		var wg sync.WaitGroup
		start := time.Now()
		ends := make(chan time.Duration, 5)
		for range 5 {
			wg.Go(func() {
				if err := b.wait(t.Context(), "k", func() {}); err != nil {
					t.Error(err)
				}
				ends <- time.Since(start)
			})
		}
		synctest.Wait()
		b.setRate(100) // 10 ms apart from now on
		wg.Wait()
		close(ends)
		var last time.Duration
		for d := range ends {
			last = max(last, d)
		}
		if last > 50*time.Millisecond {
			t.Errorf("the last waiter went after %v, want within 50ms of the new rate", last)
		}
	})
}

func TestBucketRefusesAWaitPastTheDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket()
		b.setRate(1)
		if err := b.wait(t.Context(), "k", func() {}); err != nil { // the burst
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		err := b.wait(ctx, "k", func() {})
		var te *resilient.ThrottledError
		if !errors.As(err, &te) || te.RetryAfter != time.Second || te.Key != "k" {
			t.Fatalf("err = %v, want throttled for 1s", err)
		}
		if err := b.wait(t.Context(), "k", func() {}); err != nil { // the refused token was given back
			t.Fatal(err)
		}
	})
}

func TestBucketWithoutRateWaitsForOne(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBucket()
		starved := 0
		done := make(chan error, 1)
		go func() { done <- b.wait(t.Context(), "k", func() { starved++ }) }()
		synctest.Wait()
		if calls, waited := b.usage(); calls != 1 || !waited {
			t.Errorf("usage = %d, %v; want 1 call that waits", calls, waited)
		}
		b.setRate(10)
		if err := <-done; err != nil || starved == 0 {
			t.Fatalf("err = %v, starved %d; want nil after a renewal asked for", err, starved)
		}
	})
}
