package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
)

// effects creates a table where process records each event it processed,
// with no constraint, so that a double shows as two rows.
func effects(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	table := testenv.Name("pgstore_effects")
	if _, err := pool.Exec(context.Background(), "CREATE TABLE "+table+" (event text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	dropAtEnd(t, pool, table)
	return table
}

// count returns how many effects event has.
func count(t testing.TB, pool *pgxpool.Pool, table, event string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table+" WHERE event = $1", event).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// serve calls h directly and returns the status.
func serve(t *testing.T, h http.Handler, r *http.Request) int {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

func TestHandler(t *testing.T) {
	s, pool, _ := newStore(t)
	tests := []struct {
		name string
		// process is called with the number of the call (1, 2, ...),
		// after the effect was written through tx.
		process func(ctx context.Context, tx pgx.Tx, call int) error
		want    []int // statuses of successive deliveries of one event
		calls   int   // process calls in all
		errs    int   // errors reported to the error handler
	}{
		{"processed once, then 200 without processing", func(context.Context, pgx.Tx, int) error { return nil },
			[]int{200, 200, 200}, 1, 0},
		{"an error rolls back, the redelivery processes", func(_ context.Context, _ pgx.Tx, call int) error {
			if call == 1 {
				return errors.New("boom")
			}
			return nil
		}, []int{500, 200, 200}, 2, 0},
		{"a failed statement that process ignores rolls back", func(ctx context.Context, tx pgx.Tx, call int) error {
			if call == 1 {
				_, _ = tx.Exec(ctx, "SELECT 1/0")
			}
			return nil
		}, []int{500, 200}, 2, 1},
		{"process cannot commit or roll back", func(ctx context.Context, tx pgx.Tx, call int) error {
			if err := tx.Rollback(ctx); !errors.Is(err, pgstore.ErrTxOwned) {
				t.Errorf("Rollback in process = %v, want ErrTxOwned", err)
			}
			if call == 1 {
				return tx.Commit(ctx)
			}
			return nil
		}, []int{500, 200}, 2, 0},
		{"a savepoint rolled back keeps the rest", func(ctx context.Context, tx pgx.Tx, _ int) error {
			sp, err := tx.Begin(ctx)
			if err != nil {
				return err
			}
			if _, err := sp.Exec(ctx, "SELECT 1/0"); err == nil {
				t.Error("1/0 did not fail")
			}
			return sp.Rollback(ctx)
		}, []int{200, 200}, 1, 0},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := fmt.Sprint("evt_", i) // the store is shared: one event per case
			fx := effects(t, pool)
			var calls atomic.Int32
			var reported atomic.Int32
			h := s.Handler(verifier(t), func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
				if _, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES ($1)", e.ID); err != nil {
					return err
				}
				return tt.process(ctx, tx, int(calls.Add(1)))
			}, webhook.WithErrorHandler(func(context.Context, webhook.Event, error) { reported.Add(1) }))
			for i, want := range tt.want {
				if got := serve(t, h, delivery(t, "/", id, `{"n":1}`)); got != want {
					t.Fatalf("delivery %d: status %d, want %d", i+1, got, want)
				}
			}
			if n := count(t, pool, fx, id); n != 1 {
				t.Errorf("%d effects, want 1", n)
			}
			if int(calls.Load()) != tt.calls || int(reported.Load()) != tt.errs {
				t.Errorf("process called %d times, %d errors reported; want %d, %d", calls.Load(), reported.Load(), tt.calls, tt.errs)
			}
		})
	}
}

func TestHandlerRejectsBeforeTheDatabase(t *testing.T) {
	s, _, _ := newStore(t)
	h := s.Handler(verifier(t), func(context.Context, pgx.Tx, webhook.Event) error {
		t.Error("process called")
		return nil
	})
	get := delivery(t, "/", "evt_1", "{}")
	get.Method = http.MethodGet
	forged := delivery(t, "/", "evt_1", "{}")
	forged.Header.Set(webhook.HeaderWebhookSignature, "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	unsigned := delivery(t, "/", "evt_1", "{}")
	unsigned.Header.Del(webhook.HeaderWebhookSignature)
	for _, tc := range []struct {
		name string
		r    *http.Request
		want int
	}{
		{"GET", get, http.StatusMethodNotAllowed},
		{"forged signature", forged, http.StatusUnauthorized},
		{"no signature", unsigned, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := serve(t, h, tc.r); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
	if got := serve(t, s.Handler(verifier(t), nil), delivery(t, "/", "evt_1", "{}")); got != http.StatusInternalServerError {
		t.Fatalf("nil process: status %d, want 500", got)
	}
}

func TestHandlerPanicRollsBack(t *testing.T) {
	s, pool, _ := newStore(t)
	fx := effects(t, pool)
	var calls atomic.Int32
	h := s.Handler(verifier(t), func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
		if _, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES ($1)", e.ID); err != nil {
			return err
		}
		if calls.Add(1) == 1 {
			panic("process bug")
		}
		return nil
	})
	func() {
		defer func() {
			if p := recover(); p != "process bug" {
				t.Fatalf("recovered %v, want the panic of process re-raised", p)
			}
		}()
		serve(t, h, delivery(t, "/", "evt_p", "{}"))
	}()
	if n := count(t, pool, fx, "evt_p"); n != 0 {
		t.Fatalf("%d effects after the panic, want 0 (rolled back)", n)
	}
	if got := serve(t, h, delivery(t, "/", "evt_p", "{}")); got != http.StatusOK {
		t.Fatalf("redelivery after the panic: status %d, want 200", got)
	}
	if n := count(t, pool, fx, "evt_p"); n != 1 {
		t.Fatalf("%d effects, want 1", n)
	}
}

// TestHandlerLockTimeoutIsRestored: process runs with the session's
// lock_timeout, not with the bound on the wait for a concurrent delivery.
func TestHandlerLockTimeoutIsRestored(t *testing.T) {
	s, _, _ := newStore(t)
	var got string
	h := s.Handler(verifier(t), func(ctx context.Context, tx pgx.Tx, _ webhook.Event) error {
		return tx.QueryRow(ctx, "SHOW lock_timeout").Scan(&got)
	}, webhook.WithStoreTimeout(time.Second))
	if code := serve(t, h, delivery(t, "/", "evt_lt", "{}")); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if got != "0" {
		t.Fatalf("lock_timeout in process = %q, want the session's 0", got)
	}
}

// TestTransactionalHandlerAnswers503WhenConnectionDies: a connection that
// dies under process's statement is the database failing, not the event:
// 503 with Retry-After (one error reported, not a rollback on a dead
// connection besides), and the redelivery processes the event once. A
// statement of process that fails on its own is still process's error:
// 500.
func TestTransactionalHandlerAnswers503WhenConnectionDies(t *testing.T) {
	dsn := testenv.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("needs a postgres:// URL to proxy, got %q", dsn)
	}
	for _, tc := range []struct {
		name string
		// insert writes the effect of the first delivery, or fails.
		insert func(ctx context.Context, tx pgx.Tx, p *proxy, fx, id string) error
		want   int
		errs   int
	}{
		{"backend terminated during the INSERT", func(ctx context.Context, tx pgx.Tx, _ *proxy, fx, id string) error {
			// The test's own connection ends itself while inserting.
			_, err := tx.Exec(ctx, "INSERT INTO "+fx+" SELECT $1::text WHERE pg_terminate_backend(pg_backend_pid())", id)
			return err
		}, http.StatusServiceUnavailable, 1},
		{"network dropped before the INSERT's reply", func(ctx context.Context, tx pgx.Tx, p *proxy, fx, id string) error {
			p.cut(false)
			_, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES ($1)", id)
			return fmt.Errorf("insert: %v", err) // the cause is lost: the dead connection tells
		}, http.StatusServiceUnavailable, 1},
		{"the INSERT fails on its own", func(ctx context.Context, tx pgx.Tx, _ *proxy, fx, _ string) error {
			_, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES (NULL)") // NOT NULL
			return err
		}, http.StatusInternalServerError, 0},
		{"process's own timeout ends the INSERT", func(ctx context.Context, tx pgx.Tx, _ *proxy, fx, id string) error {
			// pgx closes the connection at the deadline: still not the
			// database's failure.
			ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			_, err := tx.Exec(ctx, "INSERT INTO "+fx+" SELECT $1::text FROM pg_sleep(10)", id)
			return err
		}, http.StatusInternalServerError, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newProxy(t, u.Host)
			pu := *u
			pu.Host = p.ln.Addr().String()
			pool := newPool(t, pu.String())
			direct := newPool(t, dsn)
			_, table := newStoreOn(t, direct)
			fx := effects(t, direct)
			s, err := pgstore.New(context.Background(), pool, pgstore.WithTable(table))
			if err != nil {
				t.Fatal(err)
			}
			var calls atomic.Int32
			var reported []error
			h := s.Handler(verifier(t), func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
				if calls.Add(1) == 1 {
					return tc.insert(ctx, tx, p, fx, e.ID)
				}
				_, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES ($1)", e.ID)
				return err
			}, webhook.WithErrorHandler(func(_ context.Context, _ webhook.Event, err error) { reported = append(reported, err) }))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, delivery(t, "/", "evt_killed", "{}"))
			if w.Code != tc.want || (tc.want == http.StatusServiceUnavailable) != (w.Header().Get("Retry-After") != "") {
				t.Fatalf("connection died: status %d, Retry-After %q; want %d", w.Code, w.Header().Get("Retry-After"), tc.want)
			}
			if len(reported) != tc.errs {
				t.Fatalf("errors reported: %v, want %d", reported, tc.errs)
			}
			if got := serve(t, h, delivery(t, "/", "evt_killed", "{}")); got != http.StatusOK {
				t.Fatalf("redelivery: status %d, want 200", got)
			}
			if n := count(t, direct, fx, "evt_killed"); n != 1 || calls.Load() != 2 {
				t.Fatalf("%d effects after %d calls, want 1 after 2", n, calls.Load())
			}
		})
	}
}
