package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sleepyLimiter makes every attempt wait d, or fails with err.
type sleepyLimiter struct {
	d     time.Duration
	err   error
	calls atomic.Int32
	dl    atomic.Int64 // the deadline it saw last, Unix ns; 0 for none
}

func (l *sleepyLimiter) Wait(ctx context.Context, _ *http.Request) error {
	l.calls.Add(1)
	if dl, ok := ctx.Deadline(); ok {
		l.dl.Store(dl.UnixNano())
	}
	if l.err != nil {
		return l.err
	}
	select {
	case <-time.After(l.d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func TestLimiter(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name     string
		limiter  *sleepyLimiter
		opts     []Option
		steps    []func(*http.Request) (*http.Response, error)
		wantErr  error
		attempts int // sent
		calls    int32
		took     time.Duration
	}{
		{"waits before each attempt", &sleepyLimiter{d: time.Second}, []Option{WithRetry(RetryPolicy{InitialDelay: time.Second, Jitter: JitterNone})},
			steps(status(503), status(200)), nil, 2, 2, 3 * time.Second},
		{"alone, without retries", &sleepyLimiter{d: time.Second}, nil, steps(status(200)), nil, 1, 1, time.Second},
		{"its error ends the call", &sleepyLimiter{err: boom}, []Option{WithRetry(RetryPolicy{})}, steps(status(200)), boom, 0, 1, 0},
		{"a wait past the deadline is throttled", &sleepyLimiter{d: time.Minute}, []Option{WithRetry(RetryPolicy{}), WithTotalTimeout(time.Second)},
			steps(status(200)), ErrThrottled, 0, 1, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &script{steps: tt.steps}
				rt := NewTransport(base, append([]Option{WithLimiter(tt.limiter)}, tt.opts...)...)
				start := time.Now()
				resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
				assert.Equal(t, tt.took, time.Since(start))
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				} else {
					require.NoError(t, err)
					resp.Body.Close()
				}
				assert.Equal(t, tt.attempts, base.attempts())
				assert.Equal(t, tt.calls, tt.limiter.calls.Load())
			})
		})
	}
}

// TestLimiterSeesCallDeadline: the limiter's context ends at the total
// timeout when it is earlier than the caller's deadline.
func TestLimiterSeesCallDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &sleepyLimiter{}
		rt := NewTransport(&script{steps: steps(status(200))}, WithLimiter(l), WithTotalTimeout(3*time.Second))
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, time.Now().Add(3*time.Second).UnixNano(), l.dl.Load())
	})
}

// TestLimiterWaitEndsOnRequestCancel: a closed Request.Cancel ends the
// limiter's wait, as it ends every other wait of the stack; the waiting
// goroutine is gone when the call returns.
func TestLimiterWaitEndsOnRequestCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var sent atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			return reply(r, 200, "ok"), nil
		})
		lim := ctxLimiter(func(ctx context.Context) error {
			<-ctx.Done() // a limiter that only knows the context
			return ctx.Err()
		})
		for _, opts := range [][]Option{{WithLimiter(lim)}, {Recommended(), WithLimiter(lim)}} {
			rt := NewTransport(base, opts...)
			cancel := make(chan struct{})
			req := newRequest("GET", "http://api.example/", nil)
			req.Cancel = cancel //lint:ignore SA1019 testing that it is honoured
			go func() { time.Sleep(time.Second); close(cancel) }()
			start := time.Now()
			_, err := rt.RoundTrip(req)
			require.Error(t, err)
			assert.Equal(t, time.Second, time.Since(start))
			assert.False(t, errors.Is(err, ErrThrottled), "the caller gave up: %v", err)
		}
		assert.Zero(t, sent.Load())
	})
}

// ctxLimiter is a Limiter of a function of the context.
type ctxLimiter func(context.Context) error

func (f ctxLimiter) Wait(ctx context.Context, _ *http.Request) error { return f(ctx) }
