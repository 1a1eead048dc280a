package redisfleet_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/redisfleet"
)

func TestGateClosedByOneReplicaClosesOnAll(t *testing.T) {
	run := newRun(t)
	p := newPartner(t, 1)
	p.throttle("30")
	retry := resilient.WithRetry(resilient.RetryPolicy{MaxRetryAfter: 50 * time.Millisecond})
	var reps []*replica
	for i := range 4 {
		reps = append(reps, run.replica(i, redisfleet.Quota{}, time.Second, retry))
	}
	key := resilient.HostKey(mustRequest(t, p.URL))
	resp, err := reps[0].client.Get(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	sent := p.ok.Load() + p.over.Load()
	for _, rep := range reps[1:] {
		d := rep.hear(t, "g", key, 2*time.Second)
		t.Logf("%s heard of the closed gate %v after replica 0 got the 429", rep.name, d.Round(time.Millisecond))
		_, err := rep.client.Get(p.URL)
		var te *resilient.ThrottledError
		if !errors.As(err, &te) || te.RetryAfter < 25*time.Second {
			t.Errorf("%s: err = %v, want throttled for about 30s", rep.name, err)
		}
	}
	if now := p.ok.Load() + p.over.Load(); now != sent {
		t.Errorf("the other replicas sent %d requests through a closed gate", now-sent)
	}
}

func TestBreakerOpenedByOneReplicaOpensOnAllAndOneProbes(t *testing.T) {
	run := newRun(t)
	var (
		hits    atomic.Int32
		healthy atomic.Bool
		release = make(chan struct{})
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if !healthy.Load() {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		select { // the probe is held until the others have been refused
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	cb := resilient.WithCircuitBreaker(resilient.BreakerPolicy{ConsecutiveFailures: 2, OpenTimeout: 400 * time.Millisecond})
	var reps []*replica
	for i := range 4 {
		reps = append(reps, run.replica(i, redisfleet.Quota{}, time.Second, cb))
	}
	key := resilient.HostKey(mustRequest(t, srv.URL))
	for range 2 {
		if resp, err := reps[0].client.Get(srv.URL); err == nil {
			resp.Body.Close()
		}
	}
	for _, rep := range reps[1:] {
		d := rep.hear(t, "o", key, 2*time.Second)
		t.Logf("%s heard of the open breaker %v after replica 0 opened it", rep.name, d.Round(time.Millisecond))
	}
	before := hits.Load()
	var retryAfter time.Duration
	for _, rep := range reps[1:] {
		_, err := rep.client.Get(srv.URL)
		var open *resilient.CircuitOpenError
		if !errors.As(err, &open) || open.State != resilient.StateOpen {
			t.Fatalf("%s: err = %v, want its breaker open", rep.name, err)
		}
		retryAfter = max(retryAfter, open.RetryAfter)
	}
	if hits.Load() != before {
		t.Fatalf("replicas with an open breaker sent %d requests", hits.Load()-before)
	}

	healthy.Store(true)
	time.Sleep(retryAfter) // the open timeout, the same on every replica
	var (
		wg      sync.WaitGroup
		refused = make(chan struct{}, 16)
		prober  = make(chan *replica, 16)
	)
	for _, rep := range reps {
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := rep.client.Get(srv.URL)
				switch {
				case err == nil:
					resp.Body.Close()
					prober <- rep
				case errors.Is(err, resilient.ErrCircuitOpen):
					refused <- struct{}{}
				}
			}()
		}
	}
	timeout := time.After(3 * time.Second)
	for range 15 { // every call but the probe is refused while the probe is held
		select {
		case <-refused:
		case <-timeout:
			t.Fatalf("%d calls reached the host while one probe was in flight", hits.Load()-before)
		}
	}
	probes := hits.Load() - before
	close(release)
	wg.Wait()
	if probes != 1 || len(prober) != 1 {
		t.Fatalf("%d probes reached the host, %d calls succeeded; want 1 and 1", probes, len(prober))
	}
	p := <-prober
	for _, rep := range reps {
		if rep != p {
			rep.hear(t, "c", key, 2*time.Second)
		}
		resp, err := rep.client.Get(srv.URL)
		if err != nil {
			t.Fatalf("%s after the probe succeeded: %v", rep.name, err)
		}
		resp.Body.Close()
	}
}
