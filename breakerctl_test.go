package resilient

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingServer starts a loopback server that answers code and counts
// the requests it received.
func countingServer(t *testing.T, code *atomic.Int32) (string, http.RoundTripper, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	url, base := loopbackServer(t, false, func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(code.Load()))
	})
	return url, base, &hits
}

func TestBreakerControlReadsStateAndCounts(t *testing.T) {
	var code atomic.Int32
	code.Store(500)
	url, base, _ := countingServer(t, &code)
	c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(threeStrikes))}
	ctl := BreakersOf(c)
	require.NotNil(t, ctl)
	key, err := ctl.KeyOf(url + "/some/path?q=1")
	require.NoError(t, err)

	_, ok := ctl.Status(key)
	assert.False(t, ok, "no breaker before the first request")
	assert.Empty(t, ctl.Keys())

	for range 2 {
		_, _ = get(t, c, url)
	}
	state, counts := ctl.State(key)
	assert.Equal(t, StateClosed, state)
	assert.Equal(t, Counts{Requests: 2, TotalFailures: 2, ConsecutiveFailures: 2}, counts)
	assert.Equal(t, []string{key}, ctl.Keys())

	_, _ = get(t, c, url)
	before := time.Now()
	s, ok := ctl.Status(key)
	require.True(t, ok)
	assert.Equal(t, StateOpen, s.State)
	assert.False(t, s.Forced)
	assert.Equal(t, key, s.Key)
	assert.WithinDuration(t, before.Add(threeStrikes.OpenTimeout), s.OpenUntil, time.Second, "when the probe goes")
}

func TestBreakerForceOpenRefusesWithoutSendingUntilReset(t *testing.T) {
	var code atomic.Int32
	code.Store(200)
	url, base, hits := countingServer(t, &code)
	c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{}), WithCircuitBreaker(threeStrikes))}
	ctl := BreakersOf(c)
	key, _ := ctl.KeyOf(url)

	ctl.ForceOpen(key, 0)
	for range 5 {
		_, err := get(t, c, url)
		var coe *CircuitOpenError
		require.ErrorAs(t, err, &coe)
		assert.True(t, coe.Forced)
		assert.Equal(t, StateOpen, coe.State)
		assert.Zero(t, coe.RetryAfter, "open until Reset")
		assert.Contains(t, err.Error(), "is forced open")
	}
	assert.Zero(t, hits.Load(), "nothing reaches the host")
	s, _ := ctl.Status(key)
	assert.Equal(t, StateOpen, s.State)
	assert.True(t, s.Forced)
	assert.True(t, s.OpenUntil.IsZero())
	assert.Zero(t, s.Counts, "refusals are not counted")

	ctl.Reset(key)
	st, err := get(t, c, url)
	require.NoError(t, err)
	assert.Equal(t, 200, st)
	assert.EqualValues(t, 1, hits.Load())
}

func TestBreakerForceOpenEndsAfterItsDuration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		var changes []string
		p := threeStrikes
		p.OnStateChange = func(key string, from, to State) { changes = append(changes, from.String()+"→"+to.String()) }
		var events []Event
		var mu sync.Mutex
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(p), WithObserver(func(_ context.Context, e Event) {
			if e.Kind == EventBreaker {
				mu.Lock()
				events = append(events, e)
				mu.Unlock()
			}
		}))}
		ctl := BreakersOf(c)
		ctl.ForceOpen("http://a.example", 5*time.Second)

		time.Sleep(2 * time.Second)
		_, err := get(t, c, "http://a.example/")
		var coe *CircuitOpenError
		require.ErrorAs(t, err, &coe)
		assert.Equal(t, 3*time.Second, coe.RetryAfter, "how long the forced opening lasts")
		assert.Contains(t, err.Error(), "forced open for 3s more")
		s, _ := ctl.Status("http://a.example")
		assert.WithinDuration(t, time.Now().Add(3*time.Second), s.OpenUntil, 0)

		time.Sleep(3 * time.Second)
		st, err := get(t, c, "http://a.example/")
		require.NoError(t, err, "the breaker's own state decides again")
		assert.Equal(t, 200, st)
		assert.Equal(t, 1, base.calls("a.example"))
		assert.Equal(t, []string{"closed→open", "open→closed"}, changes)
		require.Len(t, events, 2)
		assert.Equal(t, "http://a.example", events[0].BreakerKey)
		assert.Equal(t, StateOpen, events[0].To)
	})
}

func TestBreakerForceClosedSendsEverythingAndCountsNothing(t *testing.T) {
	var code atomic.Int32
	code.Store(500)
	url, base, hits := countingServer(t, &code)
	c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(threeStrikes))}
	ctl := BreakersOf(c)
	key, _ := ctl.KeyOf(url)
	for range 3 {
		_, _ = get(t, c, url)
	}
	require.Equal(t, StateOpen, first(ctl.State(key)))

	ctl.ForceClosed(key)
	for range 10 {
		st, err := get(t, c, url)
		require.NoError(t, err, "an open breaker forced closed lets requests through")
		assert.Equal(t, 500, st)
	}
	assert.EqualValues(t, 13, hits.Load())
	s, _ := ctl.Status(key)
	assert.Equal(t, StateClosed, s.State)
	assert.True(t, s.Forced)
	assert.Zero(t, s.Counts, "the forced requests are not counted (and tripping cleared the counts)")

	ctl.Reset(key)
	for range 3 {
		_, _ = get(t, c, url)
	}
	_, err := get(t, c, url)
	assert.ErrorIs(t, err, ErrCircuitOpen, "after Reset, the fresh breaker counts again")
}

// TestBreakerForcedStateSeenByRetries checks that the call layer asks the
// forced state: a tripped breaker stops retries, one forced closed lets
// them go on.
func TestBreakerForcedStateSeenByRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", status(503, "Retry-After", "0"))
		c := &http.Client{Transport: NewTransport(base,
			WithRetry(RetryPolicy{MaxAttempts: 3}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))}
		ctl := BreakersOf(c)
		_, _ = get(t, c, "http://a.example/")
		require.Equal(t, 1, base.calls("a.example"), "the open breaker stops the retries")

		ctl.ForceClosed("http://a.example")
		st, err := get(t, c, "http://a.example/")
		require.NoError(t, err)
		assert.Equal(t, 503, st)
		assert.Equal(t, 4, base.calls("a.example"), "forced closed: every attempt goes")
	})
}

func TestBreakerResetGivesAFreshBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := newHosts()
		base.set("a.example", status(500))
		var changes []string
		p := threeStrikes
		p.OnStateChange = func(key string, from, to State) { changes = append(changes, from.String()+"→"+to.String()) }
		c := &http.Client{Transport: NewTransport(base, WithCircuitBreaker(p))}
		ctl := BreakersOf(c)
		for range 3 {
			_, _ = get(t, c, "http://a.example/")
		}
		ctl.Reset("HTTP://A.example:80") // spelled otherwise, the same host
		_, ok := ctl.Status("http://a.example")
		assert.False(t, ok, "the breaker is dropped")
		assert.Empty(t, ctl.Keys())
		st, err := get(t, c, "http://a.example/")
		require.NoError(t, err)
		assert.Equal(t, 500, st)
		state, counts := ctl.State("http://a.example")
		assert.Equal(t, StateClosed, state)
		assert.Equal(t, uint32(1), counts.TotalFailures)
		assert.Equal(t, []string{"closed→open", "open→closed"}, changes)

		ctl.Reset("http://unknown.example") // nothing to reset
		assert.Equal(t, []string{"http://a.example"}, ctl.Keys())
	})
}

func TestBreakerControlNilWithoutBreakerLayer(t *testing.T) {
	assert.Nil(t, BreakersOf(nil))
	assert.Nil(t, BreakersOf(http.DefaultClient))
	assert.Nil(t, BreakersOf(&http.Client{Transport: NewTransport(nil, WithRetry(RetryPolicy{}))}))
	assert.Nil(t, (*Transport)(nil).Breakers())

	var ctl *BreakerControl // every method is safe on nil
	ctl.ForceOpen("http://a.example", time.Second)
	ctl.ForceClosed("http://a.example")
	ctl.Reset("http://a.example")
	assert.Nil(t, ctl.Keys())
	state, counts := ctl.State("http://a.example")
	assert.Equal(t, StateClosed, state)
	assert.Zero(t, counts)
	key, err := ctl.KeyOf("HTTP://A.example:80/x")
	require.NoError(t, err)
	assert.Equal(t, "http://a.example", key)
	_, err = ctl.KeyOf("http://a b\x7f")
	assert.ErrorContains(t, err, "resilient: ")
}

func TestBreakerControlFollowsCustomKeyAndWrap(t *testing.T) {
	byTenant := BreakerPolicy{Key: func(r *http.Request) string { return r.URL.Query().Get("tenant") }}
	c := Wrap(New(WithRetry(RetryPolicy{})), WithCircuitBreaker(byTenant))
	ctl := BreakersOf(c)
	require.NotNil(t, ctl, "Wrap merges the options into one stack with a breaker layer")
	key, err := ctl.KeyOf("https://api.example/v1?tenant=acme")
	require.NoError(t, err)
	assert.Equal(t, "acme", key)
	ctl.ForceOpen(key, 0)
	state, _ := ctl.State("acme")
	assert.Equal(t, StateOpen, state)
	assert.Equal(t, []string{"acme"}, ctl.Keys())
}

// TestBreakerSteeringIsLocalAndBeatsTheFleet checks that a forced state
// wins over a fleet's opening, and that the fleet hears nothing of it.
func TestBreakerSteeringIsLocalAndBeatsTheFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{}
		base := newHosts()
		c := &http.Client{Transport: NewTransport(base, WithFleet(f), WithCircuitBreaker(threeStrikes))}
		ctl := BreakersOf(c)
		f.member().OpenBreaker("http://a.example", time.Now().Add(time.Hour))
		s, _ := ctl.Status("http://a.example")
		assert.Equal(t, StateOpen, s.State, "held open by the fleet")
		assert.WithinDuration(t, time.Now().Add(time.Hour), s.OpenUntil, 0)
		_, err := get(t, c, "http://a.example/")
		require.ErrorIs(t, err, ErrCircuitOpen)

		ctl.ForceClosed("http://a.example")
		st, err := get(t, c, "http://a.example/")
		require.NoError(t, err)
		assert.Equal(t, 200, st)
		ctl.ForceOpen("http://b.example", time.Minute)
		ctl.Reset("http://a.example")
		assert.Empty(t, f.changes, "steering is not the fleet's news")
		st, err = get(t, c, "http://a.example/")
		require.NoError(t, err, "Reset drops the fleet's opening with the breaker")
		assert.Equal(t, 200, st)
	})
}

// first is the first of two results.
func first[A, B any](a A, _ B) A { return a }

func TestBreakerForceOpenForAHugeDurationReadsAsForcedOpen(t *testing.T) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return reply(r, 200, "ok"), nil })
	rt := NewTransport(base, WithCircuitBreaker(BreakerPolicy{}))
	ctl := rt.(*Transport).Breakers()
	ctl.ForceOpen("http://api.example", time.Duration(1<<63-1)) // "forever", as a caller may spell it
	_, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
	var coe *CircuitOpenError
	require.ErrorAs(t, err, &coe)
	s, _ := ctl.Status("http://api.example")
	assert.True(t, s.Forced, "requests are refused as forced open; Status must say so")
	assert.Equal(t, StateOpen, s.State)
}
