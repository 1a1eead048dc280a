package redisfleet_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/redisfleet"
)

func TestQuotaKeptAcrossReplicas(t *testing.T) {
	run := newRun(t)
	p := newPartner(t, 100)
	q := redisfleet.Quota{Limit: 100}
	var reps []*replica
	for i := range 4 {
		reps = append(reps, run.replica(i, q, time.Second))
	}
	load(t.Context(), reps, 16, p, 500*time.Millisecond) // the leases settle
	p.ok.Store(0)
	p.over.Store(0)
	const d = 3 * time.Second
	ok, over := load(t.Context(), reps, 16, p, d)
	rate := float64(ok) / d.Seconds()
	t.Logf("4 replicas × 16 callers, quota 100/s: %.1f 2xx/s, %d 429 of %d", rate, over, ok+over)
	for _, r := range reps {
		if n := r.logs.warn.Load(); n > 0 {
			t.Logf("%s lost Redis %d times", r.name, n)
		}
	}
	if rate < 90 {
		t.Errorf("%.1f 2xx/s, want at least 90 of the quota of 100", rate)
	}
	if over > (ok+over)/100 {
		t.Errorf("%d of %d requests over the quota, want at most 1%%", over, ok+over)
	}
}

func TestDeadReplicaShareReturnsWithinLeasePeriod(t *testing.T) {
	run := newRun(t)
	p := newPartner(t, 1000)
	q := redisfleet.Quota{Limit: 100}
	const lease = 800 * time.Millisecond
	a, b := run.replica(0, q, lease), run.replica(1, q, lease)
	load(t.Context(), []*replica{a, b}, 4, p, lease)
	key := resilient.HostKey(mustRequest(t, p.URL))
	if g, _ := a.limit.Granted(key); g > 60 {
		t.Fatalf("a's share with b alive: %.1f/s, want about 50", g)
	}
	b.fleet.Crash()
	died := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), lease+lease/4)
	defer cancel()
	for ctx.Err() == nil { // a keeps calling: its share grows as it renews
		if g, _ := a.limit.Granted(key); g >= 99 {
			t.Logf("a's share back at %.1f/s %v after b died", g, time.Since(died).Round(time.Millisecond))
			return
		}
		load(ctx, []*replica{a}, 4, p, 50*time.Millisecond)
	}
	g, _ := a.limit.Granted(key)
	t.Errorf("a's share %.1f/s one lease period after b died, want 100", g)
}

func TestGrantsNeverExceedQuotaWhileReplicasJoinAndLeave(t *testing.T) {
	run := newRun(t)
	p := newPartner(t, 1000)
	q := redisfleet.Quota{Limit: 100}
	key := resilient.HostKey(mustRequest(t, p.URL))
	var reps []*replica
	for i := range 6 {
		reps = append(reps, run.replica(i, q, 800*time.Millisecond))
		load(t.Context(), reps, 2, p, 150*time.Millisecond)
		if sum := run.granted(t, key); sum > 100.001 {
			t.Fatalf("with %d replicas the grants add up to %.2f/s, over the quota of 100", i+1, sum)
		}
	}
	reps[2].fleet.Close()
	reps[4].fleet.Crash()
	load(t.Context(), []*replica{reps[0], reps[1], reps[3], reps[5]}, 2, p, 300*time.Millisecond)
	if sum := run.granted(t, key); sum > 100.001 {
		t.Fatalf("after two left the grants add up to %.2f/s", sum)
	}
}

func TestLimiterRefusesAWaitPastTheDeadline(t *testing.T) {
	run := newRun(t)
	p := newPartner(t, 1000)
	a := run.replica(0, redisfleet.Quota{Limit: 2}, time.Second)
	load(t.Context(), []*replica{a}, 1, p, 100*time.Millisecond) // spends the burst
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
	_, err := a.client.Do(req)
	var te *resilient.ThrottledError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want a *resilient.ThrottledError", err)
	}
}

func mustRequest(t testing.TB, url string) *http.Request {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
