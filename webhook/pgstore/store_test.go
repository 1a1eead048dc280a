package pgstore_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

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
	s, pool, table := newStore(t, pgstore.WithPruneInterval(5*time.Millisecond),
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
	for total < 1 {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
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
