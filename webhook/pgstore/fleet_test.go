package pgstore_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
)

// The fleet: replicas receivers, each an HTTP server with a pool and a
// Store of its own on one shared table; events events, each delivered
// copies times at once across the replicas by senders concurrent senders.
const (
	replicas   = 4
	events     = 200
	copies     = 10
	senders    = 32
	failRate   = 10 // percent of process calls that fail
	fleetLease = time.Second
	slowEvent  = "evt_0" // its first process call runs three leases
	slowProbes = 4       // deliveries of it while it runs
)

var errRandom = errors.New("random failure")

// processFunc is the process of the fleet, given how to apply the effect.
type processFunc = func(ctx context.Context, e webhook.Event, apply func() error) error

// TestFleet: every event's effect is applied exactly once across four
// replicas, whatever the concurrency, the random failures and a process
// that runs three times as long as the lease; every delivery is answered
// 200, 409 or 500.
func TestFleet(t *testing.T) {
	dsn := testenv.Postgres(t)
	t.Run("transactional", func(t *testing.T) {
		admin := newPool(t, dsn)
		_, table := newStoreOn(t, admin)
		fx := effects(t, admin)
		v := verifier(t)
		// A failure may come after the effect: the rollback undoes it.
		f := startFleet(t, dsn, table, true, func(s *pgstore.Store, process processFunc) http.Handler {
			return s.Handler(v, func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
				return process(ctx, e, func() error {
					_, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES ($1)", e.ID)
					return err
				})
			}, webhook.WithStoreTimeout(fleetLease), // a delivery waits ≤ half a lease for another
				webhook.WithErrorHandler(logError(t)))
		})
		f.run(t)
		applied := map[string]int{}
		rows, err := admin.Query(context.Background(), "SELECT event, count(*) FROM "+fx+" GROUP BY event")
		if err != nil {
			t.Fatal(err)
		}
		var ev string
		var n int
		if _, err := pgx.ForEachRow(rows, []any{&ev, &n}, func() error { applied[ev] = n; return nil }); err != nil {
			t.Fatal(err)
		}
		f.exactlyOnce(t, applied)
	})
	t.Run("lease-based", func(t *testing.T) {
		admin := newPool(t, dsn)
		_, table := newStoreOn(t, admin)
		var mu sync.Mutex
		applied := map[string]int{}
		v := verifier(t)
		// No transaction: a failure comes before the effect, as it would
		// for an effect applied as the last step.
		f := startFleet(t, dsn, table, false, func(s *pgstore.Store, process processFunc) http.Handler {
			return webhook.Handler(v, func(ctx context.Context, e webhook.Event) error {
				return process(ctx, e, func() error {
					mu.Lock()
					defer mu.Unlock()
					applied[e.ID]++
					return nil
				})
			}, webhook.WithStore(s), webhook.WithLease(fleetLease), webhook.WithErrorHandler(logError(t)))
		})
		f.run(t)
		mu.Lock()
		defer mu.Unlock()
		f.exactlyOnce(t, applied)
	})
}

// logError logs what a handler reports, to explain a failure.
func logError(t *testing.T) func(context.Context, webhook.Event, error) {
	return func(_ context.Context, e webhook.Event, err error) { t.Logf("%s: %v", e.ID, err) }
}
