package pgstore_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/webhook"
)

// TestHandlerConcurrentDelivery: a delivery of an event whose transaction
// is open elsewhere waits for it: 409 if it stays open past the bound, 200
// without processing if it commits, processed if it rolls back.
func TestHandlerConcurrentDelivery(t *testing.T) {
	for _, tc := range []struct {
		name       string
		firstFails bool // the first delivery's process fails after the second waits
		wantFirst  int
		wantSecond int
		calls      int32
	}{
		{"first commits: 200 without processing", false, 200, 200, 1},
		{"first rolls back: the waiting delivery processes", true, 500, 200, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, pool, table := newStore(t)
			fx := effects(t, pool)
			entered, finish := make(chan struct{}), make(chan error)
			var calls atomic.Int32
			h := s.Handler(verifier(t), func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
				if _, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES ($1)", e.ID); err != nil {
					return err
				}
				if calls.Add(1) == 1 {
					entered <- struct{}{}
					return <-finish
				}
				return nil
			}, webhook.WithStoreTimeout(time.Minute))
			var wg sync.WaitGroup
			var first, second int
			wg.Go(func() { first = serve(t, h, delivery(t, "/", "evt_c", "{}")) })
			<-entered
			wg.Go(func() { second = serve(t, h, delivery(t, "/", "evt_c", "{}")) })
			waitForLockWaiter(t, pool, table)
			var err error
			if tc.firstFails {
				err = errors.New("boom")
			}
			finish <- err
			wg.Wait()
			if first != tc.wantFirst || second != tc.wantSecond || calls.Load() != tc.calls {
				t.Fatalf("statuses %d, %d after %d calls; want %d, %d after %d",
					first, second, calls.Load(), tc.wantFirst, tc.wantSecond, tc.calls)
			}
			if n := count(t, pool, fx, "evt_c"); n != 1 {
				t.Fatalf("%d effects, want 1", n)
			}
		})
	}
	t.Run("still open after the bound: 409", func(t *testing.T) {
		s, _, _ := newStore(t)
		entered, finish := make(chan struct{}), make(chan struct{})
		h := s.Handler(verifier(t), func(context.Context, pgx.Tx, webhook.Event) error {
			entered <- struct{}{}
			<-finish
			return nil
		}, webhook.WithStoreTimeout(time.Second), webhook.WithErrorHandler(func(_ context.Context, _ webhook.Event, err error) { t.Log(err) }))
		var first int
		var wg sync.WaitGroup
		wg.Go(func() { first = serve(t, h, delivery(t, "/", "evt_b", "{}")) })
		<-entered
		if got := serve(t, h, delivery(t, "/", "evt_b", "{}")); got != http.StatusConflict {
			t.Errorf("second delivery while the first is open: %d, want 409", got)
		}
		close(finish)
		wg.Wait()
		if first != http.StatusOK {
			t.Fatalf("first delivery: %d, want 200", first)
		}
	})
}

// waitForLockWaiter polls until a statement on table waits for a lock (the
// second delivery blocks on the first one's row).
func waitForLockWaiter(t *testing.T, pool *pgxpool.Pool, table string) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND strpos(query, $1) > 0`, table).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery waits for the lock")
		}
		<-tick.C
	}
}
