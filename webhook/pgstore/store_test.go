package pgstore_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
)

// closedPort returns a loopback address where nothing listens.
func closedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestNewRejectsBadInput(t *testing.T) {
	// Nothing listens: a name that reached the database would fail with a
	// connection error, not ErrInvalidTable.
	pool, err := pgxpool.New(context.Background(), "postgres://postgres@"+closedPort(t)+"/test?connect_timeout=1")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, name := range []string{
		"", "1abc", "a-b", "a b", "a;drop table x", `a"b`, "a.b.c", ".a", "a.", "é",
		"t\x00", strings.Repeat("a", 64), "public." + strings.Repeat("a", 64),
	} {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			_, err := pgstore.New(context.Background(), pool, pgstore.WithTable(name))
			if !errors.Is(err, pgstore.ErrInvalidTable) {
				t.Fatalf("New(WithTable(%q)) = %v, want ErrInvalidTable", name, err)
			}
		})
	}
	if _, err := pgstore.New(context.Background(), nil); !errors.Is(err, pgstore.ErrNilPool) {
		t.Fatalf("New(nil) = %v, want ErrNilPool", err)
	}
}

func TestNewCreatesTable(t *testing.T) {
	pool := newPool(t, testenv.Postgres(t))
	ctx := context.Background()
	base := testenv.Name("pgstore_new")
	for _, tc := range []struct{ name, table string }{
		{"plain", base + "_plain"},
		{"schema qualified", "public." + base + "_qual"},
		{"mixed case is kept", base + "_MiXed"},
		{"63 bytes", base + "_" + strings.Repeat("x", 62-len(base))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			last := tc.table[strings.LastIndex(tc.table, ".")+1:]
			dropAtEnd(t, pool, last)
			// Four replicas start at once: all succeed, one table.
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Go(func() { _, errs[i] = pgstore.New(ctx, pool, pgstore.WithTable(tc.table)) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				t.Fatal(err)
			}
			var n int
			err := pool.QueryRow(ctx, "SELECT count(*) FROM pg_indexes WHERE tablename = $1", last).Scan(&n)
			if err != nil || n != 2 {
				t.Fatalf("%s has %d indexes (%v), want 2 (key, expires)", last, n, err)
			}
		})
	}
}

func TestNewRejectsForeignTable(t *testing.T) {
	pool := newPool(t, testenv.Postgres(t))
	table := testenv.Name("pgstore_foreign")
	dropAtEnd(t, pool, table)
	if _, err := pool.Exec(context.Background(), "CREATE TABLE "+table+" (id int)"); err != nil {
		t.Fatal(err)
	}
	_, err := pgstore.New(context.Background(), pool, pgstore.WithTable(table))
	if !errors.Is(err, pgstore.ErrTableSchema) {
		t.Fatalf("New over a foreign table = %v, want ErrTableSchema", err)
	}
}

func TestClaimEdges(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := context.Background()
	for _, lease := range []time.Duration{0, -time.Second} {
		if _, err := s.Claim(ctx, "k", lease); !errors.Is(err, pgstore.ErrInvalidLease) {
			t.Errorf("Claim lease %v: %v, want ErrInvalidLease", lease, err)
		}
	}
	c, err := s.Claim(ctx, "edge", time.Minute)
	if err != nil || c.Result != webhook.Claimed || c.Token == "" || c.Key != "edge" {
		t.Fatalf("Claim = %+v, %v", c, err)
	}
	if err := s.Extend(ctx, c, 0); !errors.Is(err, pgstore.ErrInvalidLease) {
		t.Errorf("Extend lease 0: %v, want ErrInvalidLease", err)
	}
	noToken := webhook.Claim{Key: "edge", Result: webhook.Claimed}
	if err := s.Complete(ctx, noToken, time.Hour); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Errorf("Complete without token: %v, want ErrLeaseLost", err)
	}
	// Keys are bytes: NUL, invalid UTF-8 and case are all distinct keys.
	for _, key := range []string{"a\x00b", "\xff\xfe", "A", "a"} {
		c, err := s.Claim(ctx, key, time.Minute)
		if err != nil || c.Result != webhook.Claimed {
			t.Errorf("Claim(%q) = %+v, %v; want Claimed", key, c, err)
		}
	}
}

func TestExpiry(t *testing.T) {
	s, pool, table := newStore(t)
	ctx := context.Background()
	// age moves a row's expiry into the past, as the database's clock
	// would after the lease or keep.
	age := func(key string) {
		t.Helper()
		_, err := pool.Exec(ctx, "UPDATE "+table+" SET expires = now() - interval '1 second' WHERE key = $1", []byte(key))
		if err != nil {
			t.Fatal(err)
		}
	}
	first, _ := s.Claim(ctx, "lease", time.Hour)
	age("lease")
	second, err := s.Claim(ctx, "lease", time.Hour)
	if err != nil || second.Result != webhook.Claimed || second.Token == first.Token {
		t.Fatalf("Claim after expiry = %+v, %v; want Claimed with a new token", second, err)
	}
	if err := s.Complete(ctx, first, time.Hour); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("Complete by the first holder: %v, want ErrLeaseLost", err)
	}
	if err := s.Complete(ctx, second, time.Hour); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx, "lease", time.Hour); c.Result != webhook.Done {
		t.Fatalf("Claim after Complete = %v, want Done", c.Result)
	}
	age("lease")
	if c, _ := s.Claim(ctx, "lease", time.Hour); c.Result != webhook.Claimed {
		t.Fatalf("Claim after keep = %v, want Claimed: a done key is forgotten after keep", c.Result)
	}
}

func TestPrune(t *testing.T) {
	s, pool, table := newStore(t)
	ctx := context.Background()
	// 25 000 expired rows (three batches), 10 live claims and 10 live done
	// rows.
	_, err := pool.Exec(ctx, `INSERT INTO `+table+` (key, token, done, expires)
		SELECT convert_to('old' || i, 'UTF8'), 'x', i % 2 = 0, now() - interval '1 minute'
		FROM generate_series(1, 25000) i`)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		c, err := s.Claim(ctx, fmt.Sprint("live", i), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if err := s.Complete(ctx, c, time.Hour); err != nil {
				t.Fatal(err)
			}
		}
	}
	n, err := s.Prune(ctx)
	if err != nil || n != 25000 {
		t.Fatalf("Prune = %d, %v; want 25000", n, err)
	}
	var left int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&left); err != nil || left != 20 {
		t.Fatalf("%d rows left (%v), want 20", left, err)
	}
	if n, err := s.Prune(ctx); err != nil || n != 0 {
		t.Fatalf("second Prune = %d, %v; want 0", n, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Prune(cctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Prune with a cancelled context: %v", err)
	}
}

func TestPruneInterval(t *testing.T) {
	type result struct {
		n   int64
		err error
	}
	results := make(chan result, 100)
	s, pool, table := newStore(t, pgstore.WithPruneInterval(100*time.Millisecond),
		pgstore.WithPruneObserver(func(n int64, err error) {
			select {
			case results <- result{n, err}:
			default:
			}
		}))
	ctx := context.Background()
	_, err := pool.Exec(ctx, "INSERT INTO "+table+" VALUES ('gone', 'x', true, now() - interval '1 minute')")
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	giveUp := time.After(time.Minute)
	for total < 1 {
		var r result
		select {
		case r = <-results:
		case <-giveUp:
			t.Fatal("no prune run deleted the expired row within a minute")
		}
		if r.err != nil && !errors.Is(r.err, context.DeadlineExceeded) {
			t.Fatal(r.err)
		}
		// A run that outlasts its interval is cut off by design (runs
		// never pile up); on a loaded machine one may be. Its batch
		// rolls back, and a later run deletes the row.
		total += r.n
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	// Closed: the store still works, the pool is open.
	if c, err := s.Claim(ctx, "after close", time.Minute); err != nil || c.Result != webhook.Claimed {
		t.Fatalf("Claim after Close = %+v, %v", c, err)
	}
}

// replyCutter drops the connections of a pool at chosen moments: armed, it
// lets the next statement run and commit, then drops the connection
// instead of handing the reply to pgx, as a network that fails at the
// wrong moment does.
type replyCutter struct{ armed atomic.Bool }

// cutConn follows the server's messages on one connection (a type byte and
// a length, then the body) to find the ReadyForQuery that ends a
// statement: sent after its commit.
type cutConn struct {
	net.Conn
	cut       *replyCutter
	hdr       []byte // the part read of the current message's header
	left      int    // bytes of the current message's body still to come
	completed bool   // a CommandComplete since the last ReadyForQuery
}

func (c *cutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.scan(p[:n]) && c.cut.armed.CompareAndSwap(true, false) {
		c.Conn.Close()
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}

// scan reports whether b holds the ReadyForQuery after a CommandComplete.
func (c *cutConn) scan(b []byte) bool {
	done := false
	for len(b) > 0 {
		if c.left > 0 {
			k := min(c.left, len(b))
			c.left, b = c.left-k, b[k:]
			continue
		}
		k := min(5-len(c.hdr), len(b))
		c.hdr, b = append(c.hdr, b[:k]...), b[k:]
		if len(c.hdr) < 5 {
			break
		}
		switch c.hdr[0] {
		case 'C':
			c.completed = true
		case 'Z':
			done = done || c.completed
			c.completed = false
		}
		c.left, c.hdr = int(binary.BigEndian.Uint32(c.hdr[1:]))-4, c.hdr[:0]
	}
	return done
}

// cutPool returns a pool of one connection to the test database, whose
// replies cut can drop. TLS is off, so that the messages can be read.
func cutPool(t *testing.T) (*pgxpool.Pool, *replyCutter) {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	cfg.ConnConfig.TLSConfig, cfg.ConnConfig.Fallbacks = nil, nil
	cut := &replyCutter{}
	var d net.Dialer
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &cutConn{Conn: c, cut: cut}, nil
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, cut
}

// TestTokenCheckedCallsRetriedOnFreshConnection: Extend, Complete and
// Release that lose their connection run again on another one, within
// their context: a killed backend does not make a processed event look
// unprocessed. A Complete whose reply was lost after it committed
// recognises its own work; a Release in that case reports ErrLeaseLost,
// as documented, though the claim is released.
func TestTokenCheckedCallsRetriedOnFreshConnection(t *testing.T) {
	faults := []struct {
		name string
		// fail makes the next statement of pool fail.
		fail      func(t *testing.T, pool, admin *pgxpool.Pool, cut *replyCutter)
		replyLost bool
	}{
		{"backend terminated", func(t *testing.T, pool, admin *pgxpool.Pool, _ *replyCutter) {
			ctx := context.Background()
			var pid int32
			if err := pool.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				t.Fatal(err)
			}
			var gone bool // the pool's only connection, the test's own
			if err := admin.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pid).Scan(&gone); err != nil || !gone {
				t.Fatalf("terminate backend %d: %v, %v", pid, gone, err)
			}
		}, false},
		{"reply lost after commit", func(_ *testing.T, _, _ *pgxpool.Pool, cut *replyCutter) { cut.armed.Store(true) }, true},
	}
	type call = func(context.Context, *pgstore.Store, webhook.Claim) error
	extend := func(ctx context.Context, s *pgstore.Store, c webhook.Claim) error {
		return s.Extend(ctx, c, time.Hour)
	}
	complete := func(ctx context.Context, s *pgstore.Store, c webhook.Claim) error {
		return s.Complete(ctx, c, time.Hour)
	}
	release := func(ctx context.Context, s *pgstore.Store, c webhook.Claim) error {
		return s.Release(ctx, c)
	}
	ops := []struct {
		name string
		call call
		// lostReply is the error wanted when the reply was lost.
		lostReply error
		after     webhook.ClaimResult // the key's state after
	}{
		{"Extend", extend, nil, webhook.InProgress},
		{"Complete", complete, nil, webhook.Done},
		{"Release", release, webhook.ErrLeaseLost, webhook.Claimed},
	}
	admin := newPool(t, testenv.Postgres(t))
	for _, f := range faults {
		for _, op := range ops {
			t.Run(f.name+"/"+op.name, func(t *testing.T) {
				pool, cut := cutPool(t)
				s, _ := newStoreOn(t, pool)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := s.Claim(ctx, "evt", time.Minute)
				if err != nil || c.Result != webhook.Claimed {
					t.Fatalf("Claim = %+v, %v", c, err)
				}
				f.fail(t, pool, admin, cut)
				err = op.call(ctx, s, c)
				var want error
				if f.replyLost {
					want = op.lostReply
				}
				if !errors.Is(err, want) || (want == nil && err != nil) {
					t.Fatalf("%s after the connection died = %v, want %v", op.name, err, want)
				}
				if cut.armed.Load() {
					t.Fatal("the reply was not cut: the test proves nothing")
				}
				if got, err := s.Claim(ctx, "evt", time.Minute); err != nil || got.Result != op.after {
					t.Fatalf("Claim after %s = %v, %v; want %v", op.name, got.Result, err, op.after)
				}
			})
		}
	}
}

// TestTokenCheckedCallsRetryWithinTheirContext: against a database gone
// for good, Complete tries again until its context ends and says so;
// without a deadline it gives up after a bounded number of runs, with the
// last failure.
func TestTokenCheckedCallsRetryWithinTheirContext(t *testing.T) {
	dsn := testenv.Postgres(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Skipf("needs a postgres:// URL to proxy, got %q", dsn)
	}
	p := newProxy(t, u.Host)
	pu := *u
	pu.Host = p.ln.Addr().String()
	pool := newPool(t, pu.String())
	_, table := newStoreOn(t, newPool(t, dsn))
	s, err := pgstore.New(context.Background(), pool, pgstore.WithTable(table))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(context.Background(), "evt", time.Minute)
	if err != nil || c.Result != webhook.Claimed {
		t.Fatalf("Claim = %+v, %v", c, err)
	}
	p.down() // connections refused from now on
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err = s.Complete(ctx, c, time.Hour)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Complete with the database gone = %v, want DeadlineExceeded", err)
	}
	var connectErr *pgconn.ConnectError
	err = s.Complete(context.Background(), c, time.Hour)
	if errors.Is(err, context.DeadlineExceeded) || !errors.As(err, &connectErr) {
		t.Fatalf("Complete without a deadline, the database gone = %v, want the *pgconn.ConnectError", err)
	}
}
