package riverqueue_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// schema is River's tables in a PostgreSQL schema of their own, created
// and migrated for one test and dropped with everything in it at its end.
type schema struct {
	dsn  string
	name string
}

// newSchema creates a schema for the test's River tables (or skips the
// test without PostgreSQL) and drops it when the test ends.
func newSchema(t testing.TB) *schema {
	t.Helper()
	s := &schema{dsn: testenv.Postgres(t), name: testenv.Name("riverq")}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.exec(t, ctx, "CREATE SCHEMA "+pgx.Identifier{s.name}.Sanitize())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.exec(t, ctx, "DROP SCHEMA "+pgx.Identifier{s.name}.Sanitize()+" CASCADE")
	})
	pool := s.pool(t)
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: s.name})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return s
}

func (s *schema) exec(t testing.TB, ctx context.Context, sql string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// pool returns a pool whose search_path is the schema (River's tables and
// the test's effects table live there), closed when the test ends.
func (s *schema) pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(s.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 8
	cfg.ConnConfig.RuntimeParams["search_path"] = s.name
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// fastRetry retries a failed attempt after 1 ms, so that tests run every
// attempt at once.
type fastRetry struct{}

func (fastRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(time.Millisecond) }

// config is the test client configuration: quiet, quick to poll, fast
// retries; with workers, one queue that works them.
func (s *schema) config(workers *river.Workers) *river.Config {
	cfg := &river.Config{
		Schema:            s.name,
		Logger:            slog.New(slog.DiscardHandler),
		RetryPolicy:       fastRetry{},
		FetchCooldown:     5 * time.Millisecond,
		FetchPollInterval: 20 * time.Millisecond,
		TestOnly:          true,
	}
	if workers != nil {
		cfg.Workers = workers
		cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 8}}
	}
	return cfg
}

// client returns a River client on pool: insert-only with nil workers,
// otherwise started, and stopped when the test ends.
func newClient(t testing.TB, pool *pgxpool.Pool, cfg *river.Config) *river.Client[pgx.Tx] {
	t.Helper()
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Workers == nil {
		return client
	}
	if err := client.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := client.Stop(ctx); err != nil {
			t.Errorf("stop river client: %v", err)
		}
	})
	return client
}

// workers registers w alone.
func workers(w river.Worker[riverqueue.EventArgs]) *river.Workers {
	ws := river.NewWorkers()
	river.AddWorker(ws, w)
	return ws
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

// body is a JSON event of type typ.
func body(id, typ string) []byte {
	return fmt.Appendf(nil, `{"id":%q,"type":%q,"data":{"n":1}}`, id, typ)
}

// delivery is a signed Standard Webhooks request for event id to url.
func delivery(t testing.TB, url, id string, b []byte) *http.Request {
	t.Helper()
	now := time.Now()
	sig, err := webhook.SignStandardWebhooks(secret, id, now, b)
	if err != nil {
		t.Fatal(err)
	}
	r, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set(webhook.HeaderWebhookID, id)
	r.Header.Set(webhook.HeaderWebhookTimestamp, fmt.Sprint(now.Unix()))
	r.Header.Set(webhook.HeaderWebhookSignature, sig)
	r.Header.Set("Content-Type", "application/json")
	return r
}

// send delivers req and returns the status code (0 on a transport error).
func send(c *http.Client, req *http.Request) int {
	resp, err := c.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// waitJob waits for the next event of events about the job of event id
// that satisfies ok, or fails the test after a bound.
func waitJob(t testing.TB, events <-chan *river.Event, id string, ok func(*river.Event) bool) *river.Event {
	t.Helper()
	timeout := time.NewTimer(20 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case ev := <-events:
			var a riverqueue.EventArgs
			if ev.Job == nil || jsonArgs(ev.Job, &a) != nil || a.ID != id {
				continue
			}
			if ok(ev) {
				return ev
			}
		case <-timeout.C:
			t.Fatalf("no awaited job event for %s within 20 s", id)
			return nil
		}
	}
}

func jsonArgs(job *rivertype.JobRow, a *riverqueue.EventArgs) error {
	return json.Unmarshal(job.EncodedArgs, a)
}

// jobs returns the number of webhook jobs per state.
func jobs(t testing.TB, pool *pgxpool.Pool) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(),
		"SELECT state::text, count(*) FROM river_job WHERE kind = $1 GROUP BY state", riverqueue.Kind)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			t.Fatal(err)
		}
		out[state] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
