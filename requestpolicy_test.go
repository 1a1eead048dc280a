package resilient

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withPolicy returns req with p in its context, or req itself for nil.
func withPolicy(req *http.Request, p *RequestPolicy) *http.Request {
	if p == nil {
		return req
	}
	return req.WithContext(WithRequestPolicy(req.Context(), *p))
}

func TestRequestPolicyReplacesTheRetryPolicy(t *testing.T) {
	tests := []struct {
		name     string
		policy   *RequestPolicy
		attempts int
		status   int
	}{
		{"none: the client's three attempts", nil, 3, 200},
		{"NoRetry: one attempt", &RequestPolicy{NoRetry: true}, 1, 503},
		{"Retry: its own MaxAttempts", &RequestPolicy{Retry: &RetryPolicy{MaxAttempts: 2}}, 2, 503},
		{"zero policy: nothing changes", &RequestPolicy{}, 3, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{steps: steps(status(503), status(503), status(200))}
				rt := NewTransport(s, WithRetry(RetryPolicy{MaxAttempts: 3, Budget: RetryBudget{Disabled: true}}))
				resp, err := rt.RoundTrip(withPolicy(newRequest("GET", "http://api.example/", nil), tt.policy))
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, tt.status, resp.StatusCode)
				assert.Equal(t, tt.attempts, s.attempts())
			})
		})
	}
}

func TestRequestPolicyReplacesTheTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			select {
			case <-time.After(5 * time.Second):
				return reply(r, 200, "report"), nil
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		})
		rt := NewTransport(slow, WithAttemptTimeout(time.Second), WithTotalTimeout(2*time.Second))
		_, err := rt.RoundTrip(newRequest("GET", "http://api.example/report", nil))
		assertTimeout(t, err, ScopeAttempt)

		began := time.Now()
		resp, err := rt.RoundTrip(withPolicy(newRequest("GET", "http://api.example/report", nil),
			&RequestPolicy{AttemptTimeout: time.Minute, TotalTimeout: time.Minute}))
		require.NoError(t, err)
		assert.Equal(t, "report", readAll(t, resp))
		assert.Equal(t, 5*time.Second, time.Since(began))

		_, err = rt.RoundTrip(withPolicy(newRequest("GET", "http://api.example/report", nil),
			&RequestPolicy{AttemptTimeout: time.Minute, TotalTimeout: 3 * time.Second}))
		assertTimeout(t, err, ScopeTotal)
	})
}

func TestRequestPolicyReplacesHedging(t *testing.T) {
	tests := []struct {
		name   string
		policy *RequestPolicy
		sent   int32
		took   time.Duration
	}{
		{"the client's 1 s delay", nil, 2, time.Second + 100*time.Millisecond},
		{"a sooner hedge", &RequestPolicy{Hedge: &HedgePolicy{Delay: 100 * time.Millisecond}}, 2, 200 * time.Millisecond},
		{"NoHedge", &RequestPolicy{NoHedge: true}, 1, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var sent atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					d := 100 * time.Millisecond
					if sent.Add(1) == 1 {
						d = 3 * time.Second
					}
					select {
					case <-time.After(d):
						return reply(r, 200, "ok"), nil
					case <-r.Context().Done():
						return nil, r.Context().Err()
					}
				})
				rt := NewTransport(base, WithHedging(HedgePolicy{Delay: time.Second}))
				began := time.Now()
				resp, err := rt.RoundTrip(withPolicy(newRequest("GET", "http://api.example/", nil), tt.policy))
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, tt.took, time.Since(began))
				assert.Equal(t, tt.sent, sent.Load())
			})
		})
	}
}

func TestRequestPolicyThatCannotApplyIsAnError(t *testing.T) {
	retry := WithRetry(RetryPolicy{})
	tests := []struct {
		name   string
		opts   []Option
		policy RequestPolicy
		want   string // a part of the error's text
	}{
		{"Retry and NoRetry", []Option{retry}, RequestPolicy{Retry: &RetryPolicy{}, NoRetry: true}, "both Retry and NoRetry"},
		{"Hedge and NoHedge", []Option{WithHedging(HedgePolicy{})}, RequestPolicy{Hedge: &HedgePolicy{}, NoHedge: true}, "both Hedge and NoHedge"},
		{"Hedge and NoRetry", []Option{WithHedging(HedgePolicy{})}, RequestPolicy{Hedge: &HedgePolicy{}, NoRetry: true}, "NoRetry"},
		{"Hedge with one attempt", []Option{WithHedging(HedgePolicy{})}, RequestPolicy{Hedge: &HedgePolicy{Delay: time.Second}, Retry: &RetryPolicy{MaxAttempts: 1}}, "MaxAttempts of 1"},
		{"a budget of its own", []Option{retry}, RequestPolicy{Retry: &RetryPolicy{Budget: RetryBudget{Ratio: 1}}}, "budget"},
		{"negative timeout", []Option{WithAttemptTimeout(time.Second)}, RequestPolicy{AttemptTimeout: -1}, "negative AttemptTimeout"},
		{"Retry without the layer", []Option{WithAttemptTimeout(time.Second)}, RequestPolicy{Retry: &RetryPolicy{}}, "without retries"},
		{"Hedge without the layer", []Option{retry}, RequestPolicy{Hedge: &HedgePolicy{Delay: time.Second}}, "without hedging"},
		{"adaptive Hedge over a fixed delay", []Option{WithHedging(HedgePolicy{Delay: time.Second})}, RequestPolicy{Hedge: &HedgePolicy{}}, "adaptive delay"},
		{"AttemptTimeout without the layer", []Option{retry}, RequestPolicy{AttemptTimeout: time.Second}, "without one"},
		{"TotalTimeout without the layer", []Option{retry}, RequestPolicy{TotalTimeout: time.Second}, "without one"},
		{"anything but off, without a call layer", nil, RequestPolicy{TotalTimeout: time.Second}, "no retry, hedging or timeout layer"},
		{"conflict, without a call layer", []Option{WithCircuitBreaker(BreakerPolicy{})}, RequestPolicy{NoHedge: true, Hedge: &HedgePolicy{}}, "both Hedge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &script{steps: steps(status(200))}
			body := &closeCounter{Reader: strings.NewReader("x")}
			req := newRequest("PUT", "http://api.example/", body)
			resp, err := NewTransport(s, tt.opts...).RoundTrip(withPolicy(req, &tt.policy))
			require.Nil(t, resp)
			require.ErrorIs(t, err, ErrRequestPolicy)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "resilient: request policy cannot apply: "), err.Error())
			assert.Zero(t, s.attempts(), "not sent")
			assert.Equal(t, 1, body.closes, "the request body is closed")
		})
	}
}

func TestRequestPolicyTurningOffAMissingLayerIsNoError(t *testing.T) {
	for _, opts := range [][]Option{nil, {WithCircuitBreaker(BreakerPolicy{})}, {WithAttemptTimeout(time.Second)}} {
		s := &script{steps: steps(status(503))}
		resp, err := NewTransport(s, opts...).RoundTrip(withPolicy(newRequest("GET", "http://api.example/", nil), &RequestPolicy{NoRetry: true, NoHedge: true}))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 1, s.attempts())
	}
}

func TestRequestPolicyOverTheWire(t *testing.T) {
	var calls atomic.Int32
	url, base := loopbackServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
	})
	c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{MaxAttempts: 3, InitialDelay: time.Millisecond, Budget: RetryBudget{Disabled: true}}))}
	req, err := http.NewRequestWithContext(WithRequestPolicy(context.Background(), RequestPolicy{NoRetry: true}), "PUT", url, strings.NewReader("x"))
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.EqualValues(t, 1, calls.Load(), "this PUT is sent once")

	code, err := get(t, c, url)
	require.NoError(t, err)
	assert.Equal(t, 503, code)
	assert.EqualValues(t, 4, calls.Load(), "the client's other calls keep their retries")

	_, err = c.Do(withPolicy(newRequest("GET", url, nil), &RequestPolicy{NoRetry: true, Retry: &RetryPolicy{}}))
	assert.True(t, errors.Is(err, ErrRequestPolicy), "found through *url.Error")
	p, ok := RequestPolicyFrom(req.Context())
	assert.True(t, ok && p.NoRetry)
}

// BenchmarkRequestPolicy measures a call without a policy, which pays one
// context lookup, next to one that carries a policy.
func BenchmarkRequestPolicy(b *testing.B) {
	rt := NewTransport(memTransport{}, Recommended())
	plain := newRequest("GET", "http://api.example/v1/items", nil)
	roundTrips(b, []stack{{"recommended", rt}}, plain, nil, false)
	roundTrips(b, []stack{{"recommended+policy", rt}}, withPolicy(plain, &RequestPolicy{NoRetry: true, TotalTimeout: time.Minute}), nil, false)
}

func TestRequestPolicyAppliesThroughChainedMiddlewares(t *testing.T) {
	tests := []struct {
		name   string
		policy RequestPolicy
	}{
		{"Retry reaches the Retry layer", RequestPolicy{Retry: &RetryPolicy{MaxAttempts: 2}}},
		{"AttemptTimeout reaches the AttemptTimeout layer", RequestPolicy{AttemptTimeout: 2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				s := &script{steps: steps(status(503), status(200))}
				rt := Retry(fastRetry)(AttemptTimeout(time.Second)(s)) // the layers a caller chains by hand
				resp, err := rt.RoundTrip(withPolicy(newRequest("GET", "http://api.example/", nil), &tt.policy))
				require.NoError(t, err, "each override applies to the layer that has the knob")
				resp.Body.Close()
				assert.Equal(t, 200, resp.StatusCode)
			})
		})
	}
}
