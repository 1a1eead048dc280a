package redisfleet_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/redisfleet"
)

func TestWithoutRedisEachReplicaSpendsItsFallbackShare(t *testing.T) {
	f := redisfleet.New(nil)
	defer f.Close()
	l := f.Limiter(redisfleet.Quota{Limit: 40, Replicas: 2})
	req := mustRequest(t, "http://a.test/")
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := l.Wait(ctx, req); err != nil {
		t.Fatal(err)
	}
	if g, _ := l.Granted(resilient.HostKey(req)); g != 20 {
		t.Errorf("share without Redis = %.1f/s, want 40/2", g)
	}
	if !f.Degraded() {
		t.Error("a fleet without Redis says it is not degraded")
	}
}

// TestRedisPausedCallsGoOnTheirFallbackShare pauses the whole Redis server
// (CLIENT PAUSE) for one second: the tests of other packages that share
// this Redis wait for that second too, so the pause is kept short and no
// other test of this package pauses it.
func TestRedisPausedCallsGoOnTheirFallbackShare(t *testing.T) {
	run := newRun(t)
	p := newPartner(t, 100)
	q := redisfleet.Quota{Limit: 100}
	const lease = 400 * time.Millisecond
	a, b := run.replica(0, q, lease), run.replica(1, q, lease)
	reps := []*replica{a, b}
	load(t.Context(), reps, 8, p, 2*lease)
	if err := run.admin.Do(t.Context(), "CLIENT", "PAUSE", "1000", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	ok, over := load(t.Context(), reps, 8, p, 900*time.Millisecond)
	t.Logf("during the 1s pause: %d 2xx, %d 429", ok, over)
	if ok < 50 {
		t.Errorf("%d calls went during the pause, want the replicas to go on their fallback shares", ok)
	}
	for _, rep := range reps {
		if !rep.fleet.Degraded() || rep.logs.warn.Load() != 1 {
			t.Errorf("%s during the pause: degraded %v, %d warnings; want true, 1", rep.name, rep.fleet.Degraded(), rep.logs.warn.Load())
		}
	}
	time.Sleep(time.Until(paused.Add(time.Second))) // the rest of the pause
	ok, over = load(t.Context(), reps, 8, p, 3*lease)
	t.Logf("after the pause: %d 2xx, %d 429", ok, over)
	for _, rep := range reps {
		if rep.fleet.Degraded() || rep.logs.info.Load() != 1 || rep.logs.warn.Load() != 1 {
			t.Errorf("%s after the pause: degraded %v, %d warnings, %d infos; want false, 1, 1",
				rep.name, rep.fleet.Degraded(), rep.logs.warn.Load(), rep.logs.info.Load())
		}
	}
	if over > (ok+over)/100 {
		t.Errorf("%d of %d requests over the quota after rejoining", over, ok+over)
	}
}

func TestKilledConnectionsDoNotBreakTheFleet(t *testing.T) {
	run := newRun(t)
	p := newPartner(t, 100)
	q := redisfleet.Quota{Limit: 100}
	retry := resilient.WithRetry(resilient.RetryPolicy{MaxRetryAfter: 50 * time.Millisecond}) // and a gate
	var reps []*replica
	for i := range 4 {
		reps = append(reps, run.replica(i, q, 600*time.Millisecond, retry))
	}
	load(t.Context(), reps, 8, p, 300*time.Millisecond)
	p.ok.Store(0)
	p.over.Store(0)
	killed := make(chan struct{})
	go func() {
		defer close(killed)
		time.Sleep(300 * time.Millisecond)
		for _, rep := range reps {
			run.kill(rep.name)
		}
	}()
	const d = 1500 * time.Millisecond
	ok, over := load(t.Context(), reps, 8, p, d)
	<-killed
	t.Logf("killed every replica's Redis connections mid-run: %.1f 2xx/s, %d 429 of %d", float64(ok)/d.Seconds(), over, ok+over)
	if float64(ok)/d.Seconds() < 85 || over > (ok+over)*3/100 {
		t.Errorf("%d 2xx and %d 429 in %v, want about 100/s and almost no 429", ok, over, d)
	}
	// The news still flows: the subscriptions were made again.
	key := resilient.HostKey(mustRequest(t, p.URL))
	p.throttle("30")
	resp, err := reps[0].client.Do(mustRequest(t, p.URL).WithContext(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %d, want 429", resp.StatusCode)
	}
	reps[1].hear(t, "g", key, 2*time.Second)
}
