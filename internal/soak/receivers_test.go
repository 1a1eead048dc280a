package soak_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

// The receivers of the webhook part.
const (
	hookLease = 3 * time.Second // renewed every third, over connections that the killer cuts
	poolConns = 8               // per receiver's pool
	secret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
)

// The streams of events; each has its own receivers and dedupe state.
const (
	streamLease = iota // pgstore in lease mode, two receivers on one table
	streamTx           // pgstore transactional
	streamRedis        // redisstore
	streams
)

var streamNames = [streams]string{"pgstore lease", "pgstore tx", "redisstore"}

// startReceivers starts the four receivers, each with a pool or client of
// its own, named h.app (PostgreSQL's application_name) or h.redisName
// (Redis's client name) so that the killer finds them and nothing else.
// Everything is closed, and the tables and keys removed, when t ends.
func (h *hooks) startReceivers(t *testing.T, dsn, redisAddr string) {
	h.app = testenv.Name("soak")
	h.redisName = h.app
	h.admin = pgPool(t, dsn, h.app+"_admin", 4)
	h.adminRedis = redisClient(t, redisAddr, h.app+"_admin")
	v, err := webhook.StandardWebhooks(secret)
	if err != nil {
		t.Fatal(err)
	}
	// The store timeout is the default, 5 s: a store call that fails
	// fails on a killed connection, not for want of time. A 503 asks the
	// senders to wait 1 s.
	common := []webhook.HandlerOption{webhook.WithLease(hookLease), webhook.WithRetryAfter(time.Second),
		webhook.WithErrorHandler(h.storeError)}
	ctx := context.Background()

	leaseTable := h.table(t, "soak_lease")
	for range 2 {
		s, err := pgstore.New(ctx, pgPool(t, dsn, h.app, poolConns), pgstore.WithTable(leaseTable))
		if err != nil {
			t.Fatal(err)
		}
		h.serve(t, streamLease, webhook.Handler(v, h.process, append(common, webhook.WithStore(watchedStore{s, h}))...))
	}

	s, err := pgstore.New(ctx, pgPool(t, dsn, h.app, poolConns), pgstore.WithTable(h.table(t, "soak_tx")))
	if err != nil {
		t.Fatal(err)
	}
	h.fx = h.table(t, "soak_fx")
	if _, err := h.admin.Exec(ctx, "CREATE TABLE "+pgx.Identifier{h.fx}.Sanitize()+" (event text NOT NULL)"); err != nil {
		t.Fatal(err)
	}
	h.serve(t, streamTx, s.Handler(v, h.processTx, common...))

	prefix := h.app + ":"
	t.Cleanup(func() { deleteKeys(t, h.adminRedis, prefix) })
	store := redisstore.New(redisClient(t, redisAddr, h.redisName), redisstore.WithPrefix(prefix))
	h.serve(t, streamRedis, webhook.Handler(v, h.process, append(common, webhook.WithStore(watchedStore{store, h}))...))

	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	h.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// serve starts a receiver of stream s, closed when t ends. The event's id
// goes into the request's context, for watchedStore.
func (h *hooks) serve(t *testing.T, s int, handler http.Handler) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(webhook.HeaderWebhookID)
		handler.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), eventID{}, id)))
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	h.urls[s] = append(h.urls[s], srv.URL)
	h.receivers = append(h.receivers, streamNames[s])
}

// table returns a table name of this run, whose table is dropped when t
// ends.
func (h *hooks) table(t *testing.T, prefix string) string {
	name := testenv.Name(prefix)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := h.admin.Exec(ctx, "DROP TABLE IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	return name
}

// storeError counts what the handlers report, by store operation, and
// keeps it with the event for the listing of those duplicated or lost.
func (h *hooks) storeError(_ context.Context, e webhook.Event, err error) {
	op := "other"
	var se *webhook.StoreError
	if errors.As(err, &se) {
		op = se.Op
	}
	h.mu.Lock()
	h.storeErrs[op]++
	if _, ok := h.errSamples[op]; !ok {
		h.errSamples[op] = err.Error()
	}
	if ev := h.events[e.ID]; ev != nil {
		ev.reported = append(ev.reported, err.Error())
	}
	h.mu.Unlock()
}

// pgPool returns a pool of at most max connections named app, closed when
// t ends.
func pgPool(t *testing.T, dsn, app string, max int32) *pgxpool.Pool {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = max
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// redisClient returns a client named name, closed when t ends.
func redisClient(t *testing.T, addr, name string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, ClientName: name, ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// deleteKeys removes every key under prefix.
func deleteKeys(t *testing.T, c *redis.Client, prefix string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var keys []string
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan %s*: %v", prefix, err)
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := c.Unlink(ctx, keys[:n]...).Err(); err != nil {
			t.Errorf("delete %s*: %v", prefix, err)
			return
		}
		keys = keys[n:]
	}
}
