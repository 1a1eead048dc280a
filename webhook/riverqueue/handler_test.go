package riverqueue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

// Four receivers, each with its own pool and insert-only client, get every
// event eight times at once: one job per event, every delivery 200.
func TestHandlerDuplicatesAcrossReceivers(t *testing.T) {
	s := newSchema(t)
	var urls []string
	for range 4 {
		client := newClient(t, s.pool(t), s.config(nil))
		srv := httptest.NewServer(riverqueue.Handler(client, verifier(t)))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	const events, copies = 20, 8
	var wg sync.WaitGroup
	var bad atomic.Int32
	for i := range events * copies {
		id := fmt.Sprintf("evt_%d", i%events)
		req := delivery(t, urls[i%len(urls)], id, body(id, "invoice.paid"))
		wg.Go(func() {
			if code := send(http.DefaultClient, req); code != http.StatusOK {
				bad.Add(1)
				t.Errorf("delivery of %s: %d, want 200", id, code)
			}
		})
	}
	wg.Wait()
	pool := s.pool(t)
	if got := jobs(t, pool); got["available"] != events || len(got) != 1 {
		t.Fatalf("jobs by state = %v, want %d available", got, events)
	}
}

// A redelivery inserts nothing whatever the state of the event's job,
// finished ones included.
func TestHandlerRedeliveryInEveryState(t *testing.T) {
	s := newSchema(t)
	pool := s.pool(t)
	srv := httptest.NewServer(riverqueue.Handler(newClient(t, pool, s.config(nil)), verifier(t)))
	t.Cleanup(srv.Close)
	const id = "evt_states"
	if code := send(http.DefaultClient, delivery(t, srv.URL, id, body(id, "t"))); code != http.StatusOK {
		t.Fatalf("first delivery: %d", code)
	}
	for _, state := range []string{"running", "retryable", "scheduled", "completed", "discarded", "cancelled", "pending", "available"} {
		t.Run(state, func(t *testing.T) {
			_, err := pool.Exec(context.Background(), `UPDATE river_job SET state = $1::river_job_state,
				finalized_at = CASE WHEN $1 IN ('completed', 'discarded', 'cancelled') THEN now() END`, state)
			if err != nil {
				t.Fatal(err)
			}
			if code := send(http.DefaultClient, delivery(t, srv.URL, id, body(id, "t"))); code != http.StatusOK {
				t.Fatalf("redelivery: %d, want 200", code)
			}
			if got := jobs(t, pool); got[state] != 1 || len(got) != 1 {
				t.Fatalf("jobs by state = %v, want one %s", got, state)
			}
		})
	}
}

// Bad input gets exactly webhook.Handler's answers; no database is needed
// to refuse it.
func TestHandlerStatusMatchesWebhookHandler(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+closedAddr(t)+"/test?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		t.Fatal(err)
	}
	v := verifier(t)
	opts := []webhook.HandlerOption{webhook.WithMaxBodyBytes(64)}
	queue := httptest.NewServer(riverqueue.Handler(client, v, opts...))
	t.Cleanup(queue.Close)
	inline := httptest.NewServer(webhook.Handler(v, func(context.Context, webhook.Event) error { return nil }, opts...))
	t.Cleanup(inline.Close)

	tests := []struct {
		name string
		want int
		req  func(url string) *http.Request
	}{
		{"GET", 405, func(url string) *http.Request { r, _ := http.NewRequest(http.MethodGet, url, nil); return r }},
		{"body over limit", 413, func(url string) *http.Request {
			return delivery(t, url, "evt_big", bytes.Repeat([]byte("x"), 65))
		}},
		{"no signature", 400, func(url string) *http.Request {
			r := delivery(t, url, "evt_1", body("evt_1", "t"))
			r.Header.Del(webhook.HeaderWebhookSignature)
			return r
		}},
		{"wrong signature", 401, func(url string) *http.Request {
			r := delivery(t, url, "evt_1", body("evt_1", "t"))
			r.Header.Set(webhook.HeaderWebhookSignature, "v1,"+strings.Repeat("A", 43)+"=")
			return r
		}},
		{"old timestamp", 401, func(url string) *http.Request {
			r := delivery(t, url, "evt_1", body("evt_1", "t"))
			r.Header.Set(webhook.HeaderWebhookTimestamp, "1000000000")
			return r
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, want := send(http.DefaultClient, tt.req(queue.URL)), send(http.DefaultClient, tt.req(inline.URL))
			if got != tt.want || want != tt.want {
				t.Fatalf("riverqueue.Handler %d, webhook.Handler %d, want both %d", got, want, tt.want)
			}
		})
	}
}

// A database that is down or does not answer gets 503 with Retry-After
// within the store timeout, never 200, and the error reaches the error
// handler.
func TestHandlerDatabaseDown(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	held.Go(func() { // accepts and never answers
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		hole.Close()
		held.Wait()
		for _, c := range conns {
			c.Close()
		}
	})

	for _, tt := range []struct{ name, addr string }{
		{"stopped", closedAddr(t)},
		{"not answering", hole.Addr().String()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := pgxpool.ParseConfig("postgres://postgres@" + tt.addr + "/test?sslmode=disable")
			if err != nil {
				t.Fatal(err)
			}
			pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
			if err != nil {
				t.Fatal(err)
			}
			var reported atomic.Int32
			h := riverqueue.Handler(client, verifier(t),
				webhook.WithStoreTimeout(300*time.Millisecond),
				webhook.WithRetryAfter(7*time.Second),
				webhook.WithErrorHandler(func(_ context.Context, e webhook.Event, err error) {
					if e.ID == "evt_down" && err != nil {
						reported.Add(1)
					}
				}))
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			resp, err := http.DefaultClient.Do(delivery(t, srv.URL, "evt_down", body("evt_down", "t")))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "7" {
				t.Fatalf("status %d, Retry-After %q; want 503 and 7", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			if reported.Load() != 1 {
				t.Fatalf("error handler called %d times, want 1", reported.Load())
			}
		})
	}
}

// A nil client is a configuration error: 500, as webhook.Handler with
// no verifier.
func TestHandlerNilClient(t *testing.T) {
	var got error
	srv := httptest.NewServer(riverqueue.Handler(nil, verifier(t),
		webhook.WithErrorHandler(func(_ context.Context, _ webhook.Event, err error) { got = err })))
	t.Cleanup(srv.Close)
	if code := send(http.DefaultClient, delivery(t, srv.URL, "evt_1", body("evt_1", "t"))); code != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", code)
	}
	if !errors.Is(got, riverqueue.ErrNoClient) {
		t.Fatalf("reported %v, want ErrNoClient", got)
	}
}
