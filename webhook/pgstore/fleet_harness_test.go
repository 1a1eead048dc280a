package pgstore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
)

// fleet is the harness of TestFleet: the replicas, the senders, and what
// they saw.
type fleet struct {
	urls      []string
	client    *http.Client
	calls     atomic.Int64
	failures  atomic.Int64
	slowStart chan struct{}
	slowOnce  sync.Once

	mu       sync.Mutex
	statuses map[int]int
	ok       map[string]bool // events that got a 200
}

// startFleet starts the replicas on table, each with its own pool, Store
// and server, all closed at the end of the test. failAfterEffect lets a
// random failure come after the effect was applied.
func startFleet(t *testing.T, dsn, table string, failAfterEffect bool, handler func(*pgstore.Store, processFunc) http.Handler) *fleet {
	f := &fleet{slowStart: make(chan struct{}), statuses: map[int]int{}, ok: map[string]bool{}}
	process := func(ctx context.Context, e webhook.Event, apply func() error) error {
		f.calls.Add(1)
		first := false
		if e.ID == slowEvent {
			f.slowOnce.Do(func() { first = true })
		}
		switch {
		case first:
			close(f.slowStart)
			// Slow work that stops when its context does.
			select {
			case <-time.After(3 * fleetLease):
			case <-ctx.Done():
				return ctx.Err()
			}
		case rand.N(100) < failRate:
			f.failures.Add(1)
			if failAfterEffect && rand.N(2) == 0 {
				if err := apply(); err != nil {
					return err
				}
			}
			return errRandom
		}
		return apply()
	}
	for range replicas {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			t.Fatal(err)
		}
		// Enough connections that no delivery waits for one: the
		// senders of this replica and the probes of the slow event.
		cfg.MaxConns = senders/replicas + slowProbes
		pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		s, err := pgstore.New(context.Background(), pool, pgstore.WithTable(table))
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(handler(s, process))
		t.Cleanup(srv.Close)
		f.urls = append(f.urls, srv.URL)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: senders}
	t.Cleanup(tr.CloseIdleConnections)
	f.client = &http.Client{Transport: tr, Timeout: time.Minute}
	return f
}

// deliver sends one delivery of id to a replica and records the answer.
func (f *fleet) deliver(t *testing.T, id string, replica int) int {
	code := send(t, f.client, f.urls[replica], id, fmt.Sprintf(`{"event":%q}`, id))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statuses[code]++
	switch code {
	case http.StatusOK:
		f.ok[id] = true
	case http.StatusConflict, http.StatusInternalServerError:
	default:
		t.Errorf("delivery of %s: status %d, want 200, 409 or 500", id, code)
	}
	return code
}

// deliverAll sends every id with senders concurrent senders, a quarter of
// them to each replica.
func (f *fleet) deliverAll(t *testing.T, ids []string) {
	jobs := make(chan string)
	var wg sync.WaitGroup
	for i := range senders {
		wg.Go(func() {
			for id := range jobs {
				f.deliver(t, id, i%replicas)
			}
		})
	}
	for _, id := range ids {
		jobs <- id
	}
	close(jobs)
	wg.Wait()
}

// run delivers every event copies times in random order, while probing the
// slow event during its run, then redelivers what did not get a 200, as
// senders do, until every event did, and once more at the end.
func (f *fleet) run(t *testing.T) {
	var wave []string
	for i := range events {
		for range copies {
			wave = append(wave, fmt.Sprint("evt_", i))
		}
	}
	rand.Shuffle(len(wave), func(i, j int) { wave[i], wave[j] = wave[j], wave[i] })
	var probes sync.WaitGroup
	probes.Go(func() { f.probeSlow(t) })
	f.deliverAll(t, wave)
	probes.Wait()
	for round := 1; ; round++ {
		var pending []string
		f.mu.Lock()
		for i := range events {
			if id := fmt.Sprint("evt_", i); !f.ok[id] {
				pending = append(pending, id)
			}
		}
		f.mu.Unlock()
		if len(pending) == 0 {
			break
		}
		if round > 50 {
			t.Fatalf("%d events still not processed after 50 rounds of redelivery", len(pending))
		}
		f.deliverAll(t, pending)
	}
	// Everything is done: one more delivery of each is 200, unprocessed.
	calls := f.calls.Load()
	for i := range events {
		if code := f.deliver(t, fmt.Sprint("evt_", i), i%replicas); code != http.StatusOK {
			t.Errorf("redelivery of processed evt_%d: %d, want 200", i, code)
		}
	}
	if got := f.calls.Load(); got != calls {
		t.Errorf("process called %d times for events already processed", got-calls)
	}
}

// probeSlow redelivers the slow event at half, one, one and a half and two
// leases into its run, concurrently: each must get 409, for the first
// delivery still holds the event.
func (f *fleet) probeSlow(t *testing.T) {
	<-f.slowStart
	start := time.Now()
	var wg sync.WaitGroup
	for k := 1; k <= slowProbes; k++ {
		wg.Go(func() {
			<-time.After(time.Until(start.Add(time.Duration(k) * fleetLease / 2)))
			if code := f.deliver(t, slowEvent, rand.N(replicas)); code != http.StatusConflict {
				t.Errorf("delivery of the slow event %v into its run: %d, want 409", time.Since(start).Round(time.Millisecond), code)
			}
		})
	}
	wg.Wait()
}

// exactlyOnce checks that every event's effect was applied once.
func (f *fleet) exactlyOnce(t *testing.T, applied map[string]int) {
	t.Helper()
	for i := range events {
		if n := applied[fmt.Sprint("evt_", i)]; n != 1 {
			t.Errorf("evt_%d applied %d times, want exactly once", i, n)
		}
	}
	if len(applied) != events {
		t.Errorf("%d events applied, want %d", len(applied), events)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t.Logf("statuses %v; process called %d times, %d random failures", f.statuses, f.calls.Load(), f.failures.Load())
	if f.failures.Load() == 0 {
		t.Error("no random failure happened: the test proves less than it says")
	}
}
