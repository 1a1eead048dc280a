package pgstore_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// newPool connects to the test database (or skips) and closes the pool at
// the end of the test.
func newPool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newStore returns a store in a table of its own, dropped at the end of
// the test, on a pool of its own, and the pool and table.
func newStore(t testing.TB, opts ...pgstore.Option) (*pgstore.Store, *pgxpool.Pool, string) {
	t.Helper()
	pool := newPool(t, testenv.Postgres(t))
	s, table := newStoreOn(t, pool, opts...)
	return s, pool, table
}

// newStoreOn returns a store on pool in a table of its own, dropped at the
// end of the test, and the table's name.
func newStoreOn(t testing.TB, pool *pgxpool.Pool, opts ...pgstore.Option) (*pgstore.Store, string) {
	t.Helper()
	table := testenv.Name("pgstore")
	s, err := pgstore.New(context.Background(), pool, append([]pgstore.Option{pgstore.WithTable(table)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	dropAtEnd(t, pool, table)
	t.Cleanup(func() { _ = s.Close() })
	return s, table
}

// dropAtEnd drops table when the test ends (registered before the pool's
// Close, so it runs first).
func dropAtEnd(t testing.TB, pool *pgxpool.Pool, table string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{table}.Sanitize()); err != nil {
			t.Errorf("drop %s: %v", table, err)
		}
	})
}

// verifier is the Standard Webhooks verifier of secret.
func verifier(t testing.TB) webhook.Verifier {
	t.Helper()
	v, err := webhook.StandardWebhooks(secret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// delivery returns a signed Standard Webhooks request of event id to url.
func delivery(t testing.TB, url, id, body string) *http.Request {
	t.Helper()
	now := time.Now()
	sig, err := webhook.SignStandardWebhooks(secret, id, now, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(webhook.HeaderWebhookID, id)
	r.Header.Set(webhook.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	r.Header.Set(webhook.HeaderWebhookSignature, sig)
	return r
}

// send delivers event id to url and returns the status.
func send(t testing.TB, c *http.Client, url, id, body string) int {
	t.Helper()
	resp, err := c.Do(delivery(t, url, id, body))
	if err != nil {
		t.Errorf("deliver %s: %v", id, err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
