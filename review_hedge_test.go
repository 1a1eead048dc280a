package resilient

import (
	"context"
	"errors"
	"io"
	"math"
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

// countingBody is a caller's request body without GetBody that counts its
// Close calls.
type countingBody struct {
	io.Reader
	closes atomic.Int32
}

func (b *countingBody) Close() error { b.closes.Add(1); return nil }

// TestHedgePolicyOutOfRangeNeverPanics: huge, negative and NaN knobs of
// HedgePolicy mean a bounded number of attempts, never a panic or a
// channel the size of MaxInt.
func TestHedgePolicyOutOfRangeNeverPanics(t *testing.T) {
	tests := []struct {
		name   string
		policy HedgePolicy
		retry  *RetryPolicy
		sent   int
	}{
		{name: "MaxHedges MaxInt alone", policy: HedgePolicy{Delay: ms(10), MaxHedges: math.MaxInt}},
		{name: "MaxHedges MaxInt with retries", policy: HedgePolicy{Delay: ms(10), MaxHedges: math.MaxInt}, retry: &RetryPolicy{MaxAttempts: 4, Budget: RetryBudget{Disabled: true}}, sent: 4},
		{name: "MaxHedges 1<<40 alone", policy: HedgePolicy{Delay: ms(10), MaxHedges: 1 << 40}},
		{name: "MaxAttempts huge", policy: HedgePolicy{Delay: ms(10), MaxHedges: 1 << 40}, retry: &RetryPolicy{MaxAttempts: 1 << 40}, sent: 0},
		{name: "negative everything", policy: HedgePolicy{Delay: -1, MaxHedges: -5, Percentile: -1, MinDelay: -1}, sent: 1},
		{name: "NaN percentile, huge floor", policy: HedgePolicy{Percentile: math.NaN(), MinDelay: math.MaxInt64}, sent: 1},
		{name: "huge delay", policy: HedgePolicy{Delay: math.MaxInt64, MaxHedges: 3}, sent: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					calls.Add(1)
					select {
					case <-time.After(time.Second):
						return reply(r, 200, "ok"), nil
					case <-r.Context().Done():
						return nil, r.Context().Err()
					}
				})
				opts := []Option{WithHedging(tt.policy)}
				if tt.retry != nil {
					opts = append(opts, WithRetry(*tt.retry))
				}
				rt := NewTransport(base, opts...)
				resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
				require.NoError(t, err)
				assert.Equal(t, "ok", readAll(t, resp))
				synctest.Wait()
				if tt.sent > 0 {
					assert.Equal(t, tt.sent, int(calls.Load()))
				}
			})
		})
	}
}

// TestHedgeLosingLargeBodiesAreClosed: an answer that lost (retryable,
// then outdone) is closed even when its body is longer than what is
// drained, and so is one that arrives while the losers are cancelled.
func TestHedgeLosingLargeBodiesAreClosed(t *testing.T) {
	big := strings.Repeat("x", maxDrain+10)
	tests := []struct {
		name     string
		delays   []time.Duration
		statuses []int
		want     int
	}{
		{name: "two retryable answers, the first dropped", delays: []time.Duration{ms(70), ms(30)}, statuses: []int{503, 503}, want: 503},
		{name: "a loser answering after the winner", delays: []time.Duration{ms(70), ms(20)}, statuses: []int{503, 200}, want: 200},
		{name: "a kept answer dropped for the winner", delays: []time.Duration{ms(60), ms(20), ms(5)}, statuses: []int{503, 200}, want: 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu     sync.Mutex
					n      int
					bodies []*trackedBody
				)
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					mu.Lock()
					i := n
					n++
					mu.Unlock()
					time.Sleep(tt.delays[min(i, len(tt.delays)-1)]) // answers even when cancelled
					resp := reply(r, tt.statuses[min(i, len(tt.statuses)-1)], big)
					mu.Lock()
					bodies = append(bodies, resp.Body.(*trackedBody))
					mu.Unlock()
					return resp, nil
				})
				rt := NewTransport(base, WithRetry(RetryPolicy{MaxAttempts: 2}), WithHedging(HedgePolicy{Delay: ms(10)}))
				resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
				require.NoError(t, err)
				assert.Equal(t, tt.want, resp.StatusCode)
				assert.Len(t, readAll(t, resp), len(big))
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				for i, b := range bodies {
					assert.True(t, b.closed.Load(), "response body %d closed", i+1)
				}
			})
		})
	}
}

// TestHedgeRecordedBodyOwnCopyClosedOnce: a body without GetBody is
// hedged once the first attempt has sent it whole; each attempt reads its
// own whole copy, and the caller's body is closed exactly once, whichever
// attempt wins.
func TestHedgeRecordedBodyOwnCopyClosedOnce(t *testing.T) {
	for _, firstWins := range []bool{false, true} {
		t.Run(map[bool]string{false: "hedge wins", true: "first wins"}[firstWins], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var (
					mu  sync.Mutex
					got []string
					n   int
				)
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					b, err := io.ReadAll(r.Body)
					r.Body.Close()
					mu.Lock()
					got = append(got, string(b))
					i := n
					n++
					mu.Unlock()
					if err != nil {
						return nil, err
					}
					d := time.Second
					if (i == 1) != firstWins {
						d = ms(5)
					}
					if i == 0 && firstWins {
						d = ms(60)
					}
					select {
					case <-time.After(d):
						return reply(r, 200, "ok"), nil
					case <-r.Context().Done():
						return nil, r.Context().Err()
					}
				})
				rt := NewTransport(base, Recommended(), WithHedging(HedgePolicy{Delay: ms(50)}))
				body := &countingBody{Reader: strings.NewReader(strings.Repeat("p", 3000))}
				req, _ := http.NewRequest("PUT", "http://api.example/", body)
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				assert.Equal(t, "ok", readAll(t, resp))
				synctest.Wait()
				mu.Lock()
				defer mu.Unlock()
				require.Len(t, got, 2)
				for _, g := range got {
					assert.Equal(t, strings.Repeat("p", 3000), g)
				}
				assert.Equal(t, int32(1), body.closes.Load(), "the caller's body is closed once")
			})
		})
	}
}

// TestHedgeNotSentIsRefunded: a hedge that the limiter refuses is not
// sent and its budget is given back.
func TestHedgeNotSentIsRefunded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &lanes{delays: []time.Duration{ms(100)}}
		var asked atomic.Int32
		lim := limiterFunc(func(r *http.Request) error {
			if asked.Add(1)%2 == 0 { // every call's hedge
				return &ThrottledError{}
			}
			return nil
		})
		rt := NewTransport(base, WithRetry(RetryPolicy{Budget: RetryBudget{Ratio: 1e-9, MinPerSecond: 0.1, Window: 10 * time.Second}}),
			WithHedging(HedgePolicy{Delay: ms(10)}), WithLimiter(lim))
		// The floor is one retry per 10 s: a hedge that is refused must not spend it.
		for range 3 {
			resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
			require.NoError(t, err)
			resp.Body.Close()
		}
		ct := rt.(*Transport).rt.(*callTransport)
		assert.True(t, ct.budget.withdraw(), "the refused hedges were refunded")
	})
}

// limiterFunc is a Limiter of a function.
type limiterFunc func(*http.Request) error

func (f limiterFunc) Wait(_ context.Context, r *http.Request) error { return f(r) }

// TestThrottledThroughURLError: a call refused by the gate fails through
// http.Client with an error that is ErrThrottled and a *ThrottledError.
func TestThrottledThroughURLError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				return reply(r, 429, "", "Retry-After", "3600"), nil
			}
			return reply(r, 200, "ok"), nil
		})
		c := &http.Client{Transport: NewTransport(base, Recommended())}
		code, err := get(t, c, "http://api.example/")
		require.NoError(t, err)
		assert.Equal(t, 429, code)
		_, err = get(t, c, "http://api.example/")
		require.Error(t, err)
		assert.ErrorIs(t, err, ErrThrottled)
		var te *ThrottledError
		require.True(t, errors.As(err, &te))
		assert.Equal(t, "http://api.example", te.Key)
		assert.InDelta(t, float64(time.Hour), float64(te.RetryAfter), float64(16*time.Minute))
	})
}
