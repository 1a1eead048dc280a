package pgstore_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
)

// proxy forwards TCP connections to the database until it is told to play
// dead: down refuses connections, hang accepts them and never answers.
type proxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	hang   bool
	conns  []net.Conn
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		p.down()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		hang := p.hang
		p.mu.Unlock()
		if hang {
			continue // held open, never read, closed by cut
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.mu.Unlock()
		p.wg.Go(func() { _, _ = io.Copy(up, c); up.Close() })
		p.wg.Go(func() { _, _ = io.Copy(c, up); c.Close() })
	}
}

// cut closes every connection; with hang set, new ones are held unanswered.
func (p *proxy) cut(hang bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hang = hang
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// down refuses new connections and closes the open ones.
func (p *proxy) down() {
	p.ln.Close()
	p.cut(false)
}

// TestDatabaseUnavailable: a database that is down or does not answer gets
// 503 with Retry-After from both handlers, within the store timeout, and
// never 200.
func TestDatabaseUnavailable(t *testing.T) {
	dsn := testenv.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("needs a postgres:// URL to proxy, got %q", dsn)
	}
	handlers := map[string]func(s *pgstore.Store, v webhook.Verifier, o webhook.HandlerOption) http.Handler{
		"transactional": func(s *pgstore.Store, v webhook.Verifier, o webhook.HandlerOption) http.Handler {
			return s.Handler(v, func(context.Context, pgx.Tx, webhook.Event) error { return nil }, o)
		},
		"lease-based": func(s *pgstore.Store, v webhook.Verifier, o webhook.HandlerOption) http.Handler {
			return webhook.Handler(v, func(context.Context, webhook.Event) error { return nil }, webhook.WithStore(s), o)
		},
	}
	for _, mode := range []string{"down", "hung"} {
		for name, handler := range handlers {
			t.Run(mode+"/"+name, func(t *testing.T) {
				p := newProxy(t, u.Host)
				pu := *u
				pu.Host = p.ln.Addr().String()
				pool := newPool(t, pu.String())
				// Before the pool closes: pgx's cancel requests to a hung
				// server wait up to 15 s for an answer.
				defer p.down()
				_, table := newStoreOn(t, newPool(t, dsn)) // the table, dropped at the end
				s, err := pgstore.New(context.Background(), pool, pgstore.WithTable(table))
				if err != nil {
					t.Fatal(err)
				}
				h := handler(s, verifier(t), webhook.WithStoreTimeout(300*time.Millisecond))
				srv := httptest.NewServer(h)
				defer srv.Close()
				c := &http.Client{Timeout: 30 * time.Second}
				if got := send(t, c, srv.URL, "evt_up", "{}"); got != http.StatusOK {
					t.Fatalf("database up: status %d, want 200", got)
				}
				if mode == "down" {
					p.down()
				} else {
					p.cut(true)
				}
				for _, id := range []string{"evt_up", "evt_new"} {
					resp, err := c.Do(delivery(t, srv.URL, id, "{}"))
					if err != nil {
						t.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
						t.Fatalf("database %s, %s: status %d, Retry-After %q; want 503 with Retry-After",
							mode, id, resp.StatusCode, resp.Header.Get("Retry-After"))
					}
				}
			})
		}
	}
}

// TestConnectionLostBeforeCommit: the connection breaks after process ran
// and before the commit: 503, nothing committed, and the redelivery
// processes the event once.
func TestConnectionLostBeforeCommit(t *testing.T) {
	dsn := testenv.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("needs a postgres:// URL to proxy, got %q", dsn)
	}
	p := newProxy(t, u.Host)
	pu := *u
	pu.Host = p.ln.Addr().String()
	pool := newPool(t, pu.String())
	defer p.down()
	direct := newPool(t, dsn)
	_, table := newStoreOn(t, direct)
	fx := effects(t, direct)
	s, err := pgstore.New(context.Background(), pool, pgstore.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	var reported []error
	h := s.Handler(verifier(t), func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
		calls++
		if _, err := tx.Exec(ctx, "INSERT INTO "+fx+" VALUES ($1)", e.ID); err != nil {
			return err
		}
		if calls == 1 {
			p.cut(false) // the network drops every connection
		}
		return nil
	}, webhook.WithErrorHandler(func(_ context.Context, _ webhook.Event, err error) { reported = append(reported, err) }))
	for i, want := range []int{http.StatusServiceUnavailable, http.StatusOK, http.StatusOK} {
		if got := serve(t, h, delivery(t, "/", "evt_lost", "{}")); got != want {
			t.Fatalf("delivery %d: status %d, want %d", i+1, got, want)
		}
	}
	if n := count(t, direct, fx, "evt_lost"); n != 1 || calls != 2 {
		t.Fatalf("%d effects after %d calls, want 1 after 2", n, calls)
	}
	if len(reported) != 1 {
		t.Fatalf("errors reported: %v, want the failed commit", reported)
	}
}
