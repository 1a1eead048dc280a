package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

// TestFleet: 4 receivers, each its own server and Redis client, one Redis.
// 200 events are each delivered 10 times, concurrently, across them; 10 %
// of process calls fail; one process runs 3 leases long and must keep its
// claim by the handler's renewals. The sender redelivers on 409 and 500
// until every delivery is answered 200. Every event's side effect must
// have happened exactly once, and no answer may be other than 200, 409 or
// 500.
func TestFleet(t *testing.T) {
	const (
		receivers = 4
		events    = 200
		copies    = 10
		workers   = 32
		lease     = 500 * time.Millisecond
		slowID    = "evt_0"
	)
	admin := newClient(t)
	prefix := newPrefix(t, admin)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	var (
		mu       sync.Mutex // guards effects and rng
		effects  = map[string]int{}
		rng      = rand.New(rand.NewPCG(seed, 1))
		calls    atomic.Int64
		failed   atomic.Int64
		slowRan  atomic.Bool
		slowLost atomic.Bool
		hookErrs = make(chan error, 100)
	)
	errFlaky := errors.New("flaky process")
	process := func(ctx context.Context, e webhook.Event) error {
		calls.Add(1)
		if e.ID == slowID && slowRan.CompareAndSwap(false, true) {
			// Three leases of work: only the handler's renewals keep the
			// claim, and a lost lease cancels ctx.
			select {
			case <-time.After(3 * lease):
			case <-ctx.Done():
				slowLost.Store(true)
				return ctx.Err()
			}
		} else {
			mu.Lock()
			fail := rng.IntN(10) == 0
			mu.Unlock()
			if fail {
				failed.Add(1)
				return errFlaky
			}
		}
		mu.Lock()
		effects[e.ID]++
		mu.Unlock()
		return nil
	}
	onError := func(_ context.Context, e webhook.Event, err error) {
		select {
		case hookErrs <- fmt.Errorf("%s: %w", e.ID, err):
		default:
		}
	}

	urls := make([]string, receivers)
	for i := range urls {
		rc := newClient(t)
		h := webhook.Handler(verifier(t), process,
			webhook.WithStore(redisstore.New(rc, redisstore.WithPrefix(prefix))),
			webhook.WithLease(lease), webhook.WithErrorHandler(onError))
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		urls[i] = srv.URL
	}

	jobs := make([]int, 0, events*copies)
	for e := range events {
		for range copies {
			jobs = append(jobs, e)
		}
	}
	rng.Shuffle(len(jobs), func(i, j int) { jobs[i], jobs[j] = jobs[j], jobs[i] })

	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	var statuses sync.Map // status -> *atomic.Int64
	count := func(status int) {
		n, _ := statuses.LoadOrStore(status, new(atomic.Int64))
		n.(*atomic.Int64).Add(1)
	}

	ctx := t.Context()
	queue := make(chan int)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for job := range queue {
				id := fmt.Sprintf("evt_%d", jobs[job])
				body := fmt.Appendf(nil, `{"id":%q,"copy":%d}`, id, job)
				for attempt := 0; ctx.Err() == nil; attempt++ {
					status, _ := deliver(ctx, t, client, urls[(job+w+attempt)%receivers], id, body)
					count(status)
					if status == http.StatusOK {
						break
					}
					if status != http.StatusConflict && status != http.StatusInternalServerError {
						t.Errorf("delivery of %s answered %d, want 200, 409 or 500", id, status)
						break
					}
					senderBackoff(ctx, attempt)
				}
			}
		})
	}
	for i := range jobs {
		queue <- i
	}
	close(queue)
	wg.Wait()
	close(hookErrs)

	for err := range hookErrs {
		t.Errorf("error hook: %v", err)
	}
	if !slowRan.Load() || slowLost.Load() {
		t.Errorf("slow process ran %v, lost its lease %v; want it to keep its claim for 3 leases", slowRan.Load(), slowLost.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	for e := range events {
		if id := fmt.Sprintf("evt_%d", e); effects[id] != 1 {
			t.Errorf("%s applied %d times, want exactly once", id, effects[id])
		}
	}
	var summary []string
	statuses.Range(func(k, v any) bool {
		summary = append(summary, fmt.Sprintf("%d×%d", v.(*atomic.Int64).Load(), k))
		return true
	})
	t.Logf("%d deliveries, answers %v; %d process calls, %d failed on purpose", len(jobs), summary, calls.Load(), failed.Load())
}

// senderBackoff is the sender's pause before a redelivery, as webhook
// senders schedule them: it grows from 5 ms to 40 ms, and ends with ctx.
func senderBackoff(ctx context.Context, attempt int) {
	d := 5 * time.Millisecond << min(attempt, 3)
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}
