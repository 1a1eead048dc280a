package resilienttest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resilient-go/resilient"
	rt "github.com/resilient-go/resilient/resilienttest"
)

// TestRecommendedStack drives resilient's recommended stack through each
// kind of fault, in memory and in fake time, and checks what the caller
// gets, how many attempts were sent and how long the call took.
func TestRecommendedStack(t *testing.T) {
	tests := []struct {
		name    string
		faults  func() *rt.Faults
		method  string
		opts    []resilient.Option // after Recommended
		callTTL time.Duration      // the caller's own deadline, 0 for none

		wantStatus   int
		wantBody     string
		wantReadErr  error // reading the body
		wantErr      error // errors.Is
		wantAttempts int
		// The call's duration in fake time lies in [minTime, maxTime].
		minTime, maxTime time.Duration
		sameKey          bool // every attempt carried the same idempotency key
	}{
		{
			name:       "503 with Retry-After, reset, pass",
			faults:     func() *rt.Faults { return rt.Script(rt.Status(503, "Retry-After", "1"), rt.Reset(), rt.Pass()) },
			wantStatus: 200, wantBody: "ok", wantAttempts: 3,
			// 1 s asked by Retry-After, then a backoff of at most 200 ms.
			minTime: time.Second, maxTime: 1200 * time.Millisecond,
		},
		{
			name: "POST throttled twice keeps its key and body",
			faults: func() *rt.Faults {
				return rt.Script(rt.Status(429, "Retry-After", "1"), rt.Status(429, "Retry-After", "2"))
			},
			method:     http.MethodPost,
			wantStatus: 200, wantBody: "ok", wantAttempts: 3,
			minTime: 3 * time.Second, maxTime: 3 * time.Second, sameKey: true,
		},
		{
			name:       "POST reset is retried with its key",
			faults:     func() *rt.Faults { return rt.Script(rt.Reset()) },
			method:     http.MethodPost,
			wantStatus: 200, wantBody: "ok", wantAttempts: 2,
			maxTime: 100 * time.Millisecond, sameKey: true,
		},
		{
			name:       "POST whose answer was lost is retried with its key",
			faults:     func() *rt.Faults { return rt.Script(rt.LostResponse()) },
			method:     http.MethodPost,
			wantStatus: 200, wantBody: "ok", wantAttempts: 2,
			maxTime: 100 * time.Millisecond, sameKey: true,
		},
		{
			name:       "host down: the last 503 is handed back",
			faults:     func() *rt.Faults { return rt.Always(rt.Status(503)) },
			wantStatus: 503, wantBody: "Service Unavailable\n", wantAttempts: 3,
			maxTime: 300 * time.Millisecond,
		},
		{
			name:       "stall ends at the attempt timeout and is retried",
			faults:     func() *rt.Faults { return rt.Script(rt.Stall()) },
			wantStatus: 200, wantBody: "ok", wantAttempts: 2,
			minTime: resilient.RecommendedTimeout, maxTime: resilient.RecommendedTimeout + 100*time.Millisecond,
		},
		{
			name:       "latency within the attempt timeout",
			faults:     func() *rt.Faults { return rt.Script(rt.Latency(2 * time.Second)) },
			wantStatus: 200, wantBody: "ok", wantAttempts: 1,
			minTime: 2 * time.Second, maxTime: 2 * time.Second,
		},
		{
			name:       "latency past the attempt timeout is retried",
			faults:     func() *rt.Faults { return rt.Script(rt.Latency(time.Minute)) },
			wantStatus: 200, wantBody: "ok", wantAttempts: 2,
			minTime: resilient.RecommendedTimeout, maxTime: resilient.RecommendedTimeout + 100*time.Millisecond,
		},
		{
			name:       "503 late: delays add up",
			faults:     func() *rt.Faults { return rt.Script(rt.Status(503, "Retry-After", "1").After(3 * time.Second)) },
			wantStatus: 200, wantBody: "ok", wantAttempts: 2,
			minTime: 4 * time.Second, maxTime: 4 * time.Second,
		},
		{
			name:       "truncated body reaches the caller",
			faults:     func() *rt.Faults { return rt.Script(rt.Truncate(1)) },
			wantStatus: 200, wantBody: "o", wantReadErr: io.ErrUnexpectedEOF, wantAttempts: 1,
		},
		{
			name:    "stall until the caller gives up",
			faults:  func() *rt.Faults { return rt.Always(rt.Stall()) },
			callTTL: 3 * time.Second,
			wantErr: context.DeadlineExceeded, wantAttempts: 1,
			minTime: 3 * time.Second, maxTime: 3 * time.Second,
		},
		{
			name:    "POST without a key is not resent after a reset",
			faults:  func() *rt.Faults { return rt.Script(rt.Reset()) },
			method:  http.MethodPost,
			opts:    []resilient.Option{resilient.WithIdempotencyKey(resilient.IdempotencyMethods())},
			wantErr: syscall.ECONNRESET, wantAttempts: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				faults := tt.faults()
				var rec rt.Recorder
				client := &http.Client{Transport: resilient.NewTransport(rec.Transport(faults),
					append([]resilient.Option{resilient.Recommended()}, tt.opts...)...)}
				ctx := t.Context()
				if tt.callTTL > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.callTTL)
					defer cancel()
				}
				method := tt.method
				if method == "" {
					method = http.MethodGet
				}
				var body io.Reader
				if method == http.MethodPost {
					body = strings.NewReader(`{"amount":42}`)
				}
				req, err := http.NewRequestWithContext(ctx, method, "http://api.test/charges", body)
				require.NoError(t, err)

				start := time.Now()
				resp, err := client.Do(req)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
					assert.Nil(t, resp)
				} else {
					require.NoError(t, err)
					got, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					assert.Equal(t, tt.wantStatus, resp.StatusCode)
					assert.Equal(t, tt.wantBody, string(got))
					if tt.wantReadErr != nil {
						assert.ErrorIs(t, rerr, tt.wantReadErr)
					} else {
						assert.NoError(t, rerr)
					}
				}
				took := time.Since(start)
				assert.GreaterOrEqual(t, took, tt.minTime)
				assert.LessOrEqual(t, took, tt.maxTime)
				assert.Equal(t, tt.wantAttempts, faults.Count(), "attempts that reached the faults")

				attempts := rec.Attempts()
				require.Len(t, attempts, tt.wantAttempts)
				for _, a := range attempts {
					assert.Equal(t, method, a.Method)
					assert.Equal(t, "http://api.test/charges", a.URL.String())
					if method == http.MethodPost {
						assert.Equal(t, `{"amount":42}`, string(a.Body), "the body is sent whole on every attempt")
					}
					if tt.sameKey {
						assert.NotEmpty(t, a.IdempotencyKey())
						assert.Equal(t, attempts[0].IdempotencyKey(), a.IdempotencyKey())
					}
				}
			})
		})
	}
}

// TestBreakerOpensAndRecovers shows a breaker's 30 s OpenTimeout passing
// in no real time.
func TestBreakerOpensAndRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Five 503s (the default ConsecutiveFailures), then the host is back.
		faults := rt.Script(rt.Status(503), rt.Status(503), rt.Status(503), rt.Status(503), rt.Status(503))
		client := &http.Client{Transport: resilient.NewTransport(faults, resilient.Recommended())}
		get := func() (int, error) {
			resp, err := client.Get("http://api.test/")
			if err != nil {
				return 0, err
			}
			resp.Body.Close()
			return resp.StatusCode, nil
		}

		code, err := get() // attempts 1–3
		require.NoError(t, err)
		assert.Equal(t, 503, code)
		code, err = get() // attempts 4–5; the breaker opens on the 5th
		require.NoError(t, err)
		assert.Equal(t, 503, code, "the last response is handed back when the breaker opens")
		assert.Equal(t, 5, faults.Count())

		_, err = get()
		require.ErrorIs(t, err, resilient.ErrCircuitOpen)
		assert.Equal(t, 5, faults.Count(), "a refused call sends nothing")

		// gobreaker lets a probe through once the timeout has passed,
		// strictly: at exactly OpenTimeout the breaker is still open.
		time.Sleep(resilient.DefaultOpenTimeout + time.Millisecond)
		code, err = get() // the probe passes and closes the breaker
		require.NoError(t, err)
		assert.Equal(t, 200, code)
		assert.Equal(t, 6, faults.Count())
	})
}

// TestSynctestRecipe runs the recipe of the package documentation as it is
// written there, so that the documentation cannot drift.
func TestSynctestRecipe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faults := rt.Script(
			rt.Status(503, "Retry-After", "1"),
			rt.Stall(),
		)
		client := &http.Client{Transport: resilient.NewTransport(faults, resilient.Recommended())}
		start := time.Now()
		resp, err := client.Get("http://api.test/charges")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, 3, faults.Count())
		took := time.Since(start)
		assert.GreaterOrEqual(t, took, 11*time.Second)
		assert.Less(t, took, 11*time.Second+200*time.Millisecond, "11 s plus a backoff of at most 200 ms")
	})
}

// TestResetError checks the shape of the error of a reset on the client
// side: the one net/http gives for a reset TCP connection.
func TestResetError(t *testing.T) {
	_, err := rt.Always(rt.Reset()).RoundTrip(mustRequest(t, http.MethodGet, "http://api.test:8080/x", nil))
	require.Error(t, err)
	assert.True(t, errors.Is(err, syscall.ECONNRESET))
	assert.Equal(t, "read tcp api.test:8080: read: connection reset by peer", err.Error())
	assert.True(t, resilient.IsRetryable(nil, err))
}
