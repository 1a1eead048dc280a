package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// gauge counts the attempts in flight and remembers the most at once.
type gauge struct{ now, peak atomic.Int32 }

func (g *gauge) enter() {
	n := g.now.Add(1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
}

func (g *gauge) leave() { g.now.Add(-1) }

func TestBulkheadCapsAttemptsInFlightOverTheWire(t *testing.T) {
	for _, proto := range protos {
		t.Run(proto.name, func(t *testing.T) {
			var g gauge
			arrived, release := make(chan struct{}, 6), make(chan struct{})
			url, base := loopbackServer(t, proto.h2, func(w http.ResponseWriter, r *http.Request) {
				g.enter()
				defer g.leave()
				arrived <- struct{}{}
				<-release
				_, _ = io.WriteString(w, "ok")
			})
			c := &http.Client{Transport: NewTransport(base, WithConcurrencyLimit(ConcurrencyPolicy{Limit: 2, MaxQueue: 8}))}
			var wg sync.WaitGroup
			errs := make(chan error, 6)
			for range 6 {
				wg.Go(func() {
					code, err := get(t, c, url)
					if err == nil && code != 200 {
						err = fmt.Errorf("status %d", code)
					}
					errs <- err
				})
			}
			<-arrived
			<-arrived // the limit is reached; the others wait in the queue
			close(release)
			wg.Wait()
			close(errs)
			for err := range errs {
				assert.NoError(t, err)
			}
			assert.EqualValues(t, 2, g.peak.Load(), "never more than the limit in flight")
		})
	}
}

// holding answers every request with a body that stays open until the
// test closes it, and counts the attempts.
func holding(n *atomic.Int32) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		n.Add(1)
		return reply(r, 200, "ok"), nil
	})
}

func TestBulkheadRefusalIsTypedNotRetriedNotCounted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		var changes atomic.Int32
		rt := NewTransport(holding(&sent),
			WithConcurrencyLimit(ConcurrencyPolicy{Limit: 1}),
			WithRetry(RetryPolicy{}),
			WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1, OnStateChange: func(string, State, State) { changes.Add(1) }}))
		first, err := rt.RoundTrip(newRequest("GET", "http://api.example/a", nil))
		require.NoError(t, err) // its body holds the only slot
		for range 3 {
			resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/b", nil))
			require.Nil(t, resp)
			require.ErrorIs(t, err, ErrBulkheadFull)
			var be *BulkheadError
			require.ErrorAs(t, err, &be)
			assert.Equal(t, "http://api.example", be.Key)
			assert.Equal(t, 1, be.Limit)
			assert.NoError(t, be.Err, "refused for want of room, not after a wait")
			var re *RetryError
			require.ErrorAs(t, err, &re)
			assert.Zero(t, re.Attempts, "not sent")
		}
		assert.EqualValues(t, 1, sent.Load(), "a refusal is never retried against the host")
		assert.Zero(t, changes.Load(), "the breaker never counts a refusal")
		// Another host has slots of its own.
		other, err := rt.RoundTrip(newRequest("GET", "http://other.example/", nil))
		require.NoError(t, err)
		other.Body.Close()
		first.Body.Close()
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/c", nil))
		require.NoError(t, err, "closing the body freed the slot")
		resp.Body.Close()
	})
}

func TestBulkheadSlotHeldUntilBodyDone(t *testing.T) {
	tests := []struct {
		name string
		opts []Option
		done func(*http.Response) // what the caller does with the first body
	}{
		{"closed", nil, func(r *http.Response) { r.Body.Close() }},
		{"read to EOF", nil, func(r *http.Response) { _, _ = io.ReadAll(r.Body) }},
		{"attempt timeout", []Option{WithAttemptTimeout(time.Second)}, func(*http.Response) { time.Sleep(time.Second) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sent atomic.Int32
				rt := NewTransport(holding(&sent), append(tt.opts, WithConcurrencyLimit(ConcurrencyPolicy{Limit: 1, MaxQueue: 1}))...)
				first, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
				require.NoError(t, err)
				got := make(chan error, 1)
				go func() {
					resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
					if err == nil {
						resp.Body.Close()
					}
					got <- err
				}()
				synctest.Wait()
				require.EqualValues(t, 1, sent.Load(), "the second waits for the slot")
				tt.done(first)
				require.NoError(t, <-got)
				assert.EqualValues(t, 2, sent.Load())
				first.Body.Close()
			})
		})
	}
}

func TestBulkheadWaitEndsWithTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		deaf := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			time.Sleep(time.Minute) // holds its slot, whatever its context says
			return reply(r, 200, "ok"), nil
		})
		rt := NewTransport(deaf, WithConcurrencyLimit(ConcurrencyPolicy{Limit: 1, MaxQueue: 4}), WithTotalTimeout(time.Second))
		held := make(chan struct{})
		go func() {
			defer close(held)
			if resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil)); err == nil {
				resp.Body.Close()
			}
		}()
		synctest.Wait()

		began := time.Now()
		_, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.ErrorIs(t, err, ErrBulkheadFull)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(began), "waited until the total timeout")

		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		began = time.Now()
		_, err = rt.RoundTrip(newRequest("GET", "http://api.example/", nil).WithContext(ctx))
		require.ErrorIs(t, err, ErrBulkheadFull)
		require.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, 100*time.Millisecond, time.Since(began))
		assert.EqualValues(t, 1, sent.Load())
		<-held
	})
}

func TestBulkheadRetryDrainsAndFreesTheSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &script{steps: steps(status(503), status(200))}
		rt := NewTransport(s, WithConcurrencyLimit(ConcurrencyPolicy{Limit: 1}), WithRetry(fastRetry))
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err, "the retry finds the slot of the drained 503 free")
		assert.Equal(t, 200, resp.StatusCode)
		resp.Body.Close()
		assert.Equal(t, 2, s.attempts())
	})
}

func TestBulkheadHedgeNeverWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		slow := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			time.Sleep(time.Second)
			return reply(r, 200, "ok"), nil
		})
		rt := NewTransport(slow, WithConcurrencyLimit(ConcurrencyPolicy{Limit: 1, MaxQueue: 4}),
			WithHedging(HedgePolicy{Delay: 100 * time.Millisecond}))
		began := time.Now()
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, time.Second, time.Since(began))
		assert.EqualValues(t, 1, sent.Load(), "the hedge found no free slot and was not sent")
	})
}

func TestBulkheadKeepsHostsBounded(t *testing.T) {
	rt := NewTransport(roundTripFunc(func(r *http.Request) (*http.Response, error) { return reply(r, 200, ""), nil }),
		WithConcurrencyLimit(ConcurrencyPolicy{}), WithCircuitBreaker(BreakerPolicy{MaxBreakers: 8}))
	for i := range 100 {
		resp, err := rt.RoundTrip(newRequest("GET", fmt.Sprintf("http://h%d.example/", i), nil))
		require.NoError(t, err)
		resp.Body.Close()
	}
	b := rt.(*Transport).rt.(*callTransport).bulkhead
	b.mu.Lock()
	defer b.mu.Unlock()
	assert.LessOrEqual(t, len(b.m), 8)
}

func TestBulkheadErrorText(t *testing.T) {
	assert.Equal(t, "resilient: 4 attempts in flight to https://api.example, no room to wait",
		(&BulkheadError{Key: "https://api.example", Limit: 4}).Error())
	err := &BulkheadError{Key: "https://api.example", Limit: 4, Err: context.DeadlineExceeded}
	assert.Equal(t, "resilient: 4 attempts in flight to https://api.example, waited until context deadline exceeded", err.Error())
	assert.True(t, errors.Is(err, ErrBulkheadFull) && errors.Is(err, context.DeadlineExceeded))
}

// BenchmarkBulkhead measures what a bulkhead with a free slot adds to a
// successful call: the host's lookup, the slot and its body.
func BenchmarkBulkhead(b *testing.B) {
	roundTrips(b, []stack{
		{"retry", NewTransport(memTransport{}, WithRetry(RetryPolicy{}))},
		{"retry+bulkhead", NewTransport(memTransport{}, WithRetry(RetryPolicy{}), WithConcurrencyLimit(ConcurrencyPolicy{}))},
		{"retry+adaptive", NewTransport(memTransport{}, WithRetry(RetryPolicy{}), WithAdaptiveConcurrency(AdaptivePolicy{}))},
	}, newRequest("GET", "http://api.example/v1/items", nil), nil, false)
}

func TestBulkheadRetryFindsTheSlotOfALongRetriedBodyFree(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		long := strings.Repeat("x", 100<<10) // over what a drain reads whole
		s := &script{steps: steps(func(r *http.Request) (*http.Response, error) { return reply(r, 503, long), nil }, status(200))}
		rt := NewTransport(s, WithConcurrencyLimit(ConcurrencyPolicy{Limit: 1, MaxQueue: 1}), WithRetry(fastRetry),
			WithTotalTimeout(10*time.Second))
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode, "the retry must not wait for the slot its own 503 holds")
		assert.Equal(t, 2, s.attempts())
	})
}

func TestBulkheadSlotFreedWhenTheBaseTransportPanics(t *testing.T) {
	var calls atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if calls.Add(1) == 1 {
			panic("base transport bug")
		}
		return reply(r, 200, "ok"), nil
	})
	rt := NewTransport(base, WithConcurrencyLimit(ConcurrencyPolicy{Limit: 1}))
	func() {
		defer func() { require.NotNil(t, recover()) }() // as http.Server recovers a handler's panic
		_, _ = rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
	}()
	resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
	require.NoError(t, err, "the panicked attempt's slot is free again")
	resp.Body.Close()
}
