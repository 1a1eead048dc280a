package resilient

import (
	"bytes"
	"context"
	"errors"
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

// lanes is an in-memory base transport whose n-th request (from 1) waits
// delays[n-1] (the last one for later requests) and answers with
// statuses[n-1], or gives up when its context ends. It records the bodies
// it read and the bodies it handed out.
type lanes struct {
	delays   []time.Duration
	statuses []int
	ignore   bool // answer even when the context ended

	mu     sync.Mutex
	n      int
	got    []string
	bodies []*trackedBody
}

func (l *lanes) RoundTrip(r *http.Request) (*http.Response, error) {
	l.mu.Lock()
	l.n++
	i := l.n - 1
	l.mu.Unlock()
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	l.mu.Lock()
	l.got = append(l.got, string(body))
	l.mu.Unlock()
	timer := time.NewTimer(l.delays[min(i, len(l.delays)-1)])
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-r.Context().Done():
		if !l.ignore {
			return nil, r.Context().Err()
		}
		<-timer.C
	}
	code := 200
	if len(l.statuses) > 0 {
		code = l.statuses[min(i, len(l.statuses)-1)]
	}
	resp := reply(r, code, "answer")
	l.mu.Lock()
	l.bodies = append(l.bodies, resp.Body.(*trackedBody))
	l.mu.Unlock()
	return resp, nil
}

func (l *lanes) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

// events collects the observer's events.
type events struct {
	mu  sync.Mutex
	all []Event
}

func (e *events) observe(_ context.Context, ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

func (e *events) attempts() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []Event
	for _, ev := range e.all {
		if ev.Kind == EventAttempt {
			out = append(out, ev)
		}
	}
	return out
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func TestHedging(t *testing.T) {
	fixed := HedgePolicy{Delay: ms(50)}
	tests := []struct {
		name     string
		policy   HedgePolicy
		retry    RetryPolicy
		method   string
		header   string // an Idempotency-Key, if set
		delays   []time.Duration
		statuses []int
		want     int           // the call's status
		took     time.Duration // the call's duration
		sent     int           // requests the base saw
		reasons  []string      // the Reason of each attempt event, by attempt number
	}{
		{name: "hedge wins over a slow attempt", policy: fixed, method: "GET",
			delays: []time.Duration{time.Second, ms(5)}, want: 200, took: ms(55), sent: 2, reasons: []string{"", "hedge"}},
		{name: "fast answer sends no hedge", policy: fixed, method: "GET",
			delays: []time.Duration{ms(10)}, want: 200, took: ms(10), sent: 1, reasons: []string{""}},
		{name: "first answer not worth a retry wins", policy: fixed, method: "GET",
			delays: []time.Duration{ms(70), ms(50)}, statuses: []int{404, 200}, want: 404, took: ms(70), sent: 2, reasons: []string{"", "hedge"}},
		{name: "a 503 does not win while a hedge is in flight", policy: fixed, method: "GET",
			delays: []time.Duration{ms(70), ms(50)}, statuses: []int{503, 200}, want: 200, took: ms(100), sent: 2, reasons: []string{"", "hedge"}},
		{name: "two hedges", policy: HedgePolicy{Delay: ms(50), MaxHedges: 2}, method: "GET",
			delays: []time.Duration{time.Second, time.Second, ms(5)}, want: 200, took: ms(105), sent: 3, reasons: []string{"", "hedge", "hedge"}},
		{name: "hedges count in MaxAttempts", policy: HedgePolicy{Delay: ms(50), MaxHedges: 5}, retry: RetryPolicy{MaxAttempts: 2}, method: "GET",
			delays: []time.Duration{ms(200)}, want: 200, took: ms(200), sent: 2, reasons: []string{"", "hedge"}},
		{name: "POST without a key is never hedged", policy: fixed, method: "POST",
			delays: []time.Duration{ms(200)}, want: 200, took: ms(200), sent: 1, reasons: []string{""}},
		{name: "POST with a key is hedged", policy: fixed, method: "POST", header: "k1",
			delays: []time.Duration{time.Second, ms(5)}, want: 200, took: ms(55), sent: 2, reasons: []string{"", "hedge"}},
		{name: "all retryable: retried after", policy: fixed, retry: RetryPolicy{MaxAttempts: 3, InitialDelay: ms(100), Jitter: JitterNone}, method: "GET",
			delays: []time.Duration{ms(60), ms(20), ms(5)}, statuses: []int{503, 503, 200}, want: 200, took: ms(175), sent: 3, reasons: []string{"", "hedge", ""}},
		{name: "adaptive delay waits for latencies", policy: HedgePolicy{}, method: "GET",
			delays: []time.Duration{ms(300), ms(5)}, want: 200, took: ms(300), sent: 1, reasons: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &lanes{delays: tt.delays, statuses: tt.statuses}
				var ev events
				rt := NewTransport(base, WithRetry(tt.retry), WithHedging(tt.policy), WithObserver(ev.observe))
				req, _ := http.NewRequest(tt.method, "http://api.example/x", strings.NewReader("payload"))
				if tt.header != "" {
					req.Header.Set("Idempotency-Key", tt.header)
				}
				start := time.Now()
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				assert.Equal(t, tt.took, time.Since(start))
				assert.Equal(t, tt.want, resp.StatusCode)
				assert.Equal(t, "answer", readAll(t, resp))
				synctest.Wait()
				assert.Equal(t, tt.sent, base.count())
				for _, b := range base.got {
					assert.Equal(t, "payload", b, "every attempt gets the whole body")
				}
				for _, b := range base.bodies {
					assert.True(t, b.closed.Load(), "every response body is closed")
				}
				reasons := make([]string, len(tt.reasons))
				for _, e := range ev.attempts() {
					if assert.LessOrEqual(t, e.Attempt, len(reasons)) {
						reasons[e.Attempt-1] = e.Reason
					}
				}
				assert.Equal(t, tt.reasons, reasons)
			})
		})
	}
}

// TestHedgeLoserIsCancelledAndClosed: the slow attempt's context ends when
// the hedge wins, its body is closed even when the base answers anyway,
// and observers see it as lost; the winner's context lives until its body
// is closed.
func TestHedgeLoserIsCancelledAndClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &lanes{delays: []time.Duration{ms(500), ms(5)}, ignore: true}
		var ev events
		rt := NewTransport(base, WithRetry(RetryPolicy{}), WithHedging(HedgePolicy{Delay: ms(20)}), WithObserver(ev.observe))
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err)
		time.Sleep(time.Second) // the winner's body stays readable
		assert.Equal(t, "answer", readAll(t, resp))
		synctest.Wait()
		require.Len(t, base.bodies, 2)
		assert.True(t, base.bodies[0].closed.Load(), "the loser's body")
		var lost int
		for _, e := range ev.attempts() {
			if errors.Is(e.Err, errHedgeLost) {
				lost++
				assert.Equal(t, 1, e.Attempt)
			}
		}
		assert.Equal(t, 1, lost)
	})
}

// TestHedgeGuards: no hedge is sent while the host's breaker is not
// closed, when the retry budget is spent, or when the body cannot be sent
// twice at once.
func TestHedgeGuards(t *testing.T) {
	tests := []struct {
		name  string
		opts  []Option
		body  func() io.Reader // nil: no body
		prime func(rt http.RoundTripper)
		sent  int
	}{
		{name: "breaker half-open", opts: []Option{WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1, OpenTimeout: time.Second})},
			prime: func(rt http.RoundTripper) {
				failing := newRequest("GET", "http://api.example/fail", nil)
				failing.Header.Set("X-Fail", "1")
				resp, err := rt.RoundTrip(failing)
				if err == nil {
					resp.Body.Close()
				}
				time.Sleep(2 * time.Second) // open → half-open
			}, sent: 1},
		{name: "breaker closed", opts: []Option{WithCircuitBreaker(BreakerPolicy{})}, sent: 2},
		{name: "budget spent", opts: []Option{WithRetry(RetryPolicy{Budget: RetryBudget{Ratio: 1e-9, MinPerSecond: 1e-9}})}, sent: 1},
		{name: "body without GetBody, still streaming", body: func() io.Reader { return io.MultiReader(strings.NewReader("payload")) }, sent: 1},
		{name: "body with GetBody", body: func() io.Reader { return bytes.NewReader([]byte("payload")) }, sent: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					calls.Add(1)
					if r.Header.Get("X-Fail") != "" {
						return reply(r, 500, "fail"), nil
					}
					if r.Body != nil {
						// Reads the first byte, then stalls: the body is never whole.
						_, _ = r.Body.Read(make([]byte, 1))
					}
					select {
					case <-time.After(ms(290)):
					case <-r.Context().Done():
						return nil, r.Context().Err()
					}
					if r.Body != nil {
						_, _ = io.Copy(io.Discard, r.Body)
						r.Body.Close()
					}
					return reply(r, 200, "ok"), nil
				})
				opts := append([]Option{WithRetry(RetryPolicy{MaxAttempts: 1 + 1}), WithHedging(HedgePolicy{Delay: ms(50)})}, tt.opts...)
				rt := NewTransport(base, opts...)
				if tt.prime != nil {
					tt.prime(rt)
					calls.Store(0)
				}
				method, body := "GET", io.Reader(nil)
				if tt.body != nil {
					method, body = "PUT", tt.body()
				}
				req, _ := http.NewRequest(method, "http://api.example/", body)
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				resp.Body.Close()
				synctest.Wait()
				assert.Equal(t, tt.sent, int(calls.Load()))
			})
		})
	}
}

// TestHedgeAdaptiveDelay: once a host has 20 latencies of 10 ms, a slow
// attempt is hedged after their 95th percentile (the upper bound of its
// bucket, 10.24 ms), not after the 1 s it takes.
func TestHedgeAdaptiveDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			d := ms(10)
			if n.Add(1) == hedgeWarmup+1 {
				d = time.Second
			}
			select {
			case <-time.After(d):
				return reply(r, 200, "ok"), nil
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		})
		rt := NewTransport(base, WithRetry(RetryPolicy{}), WithHedging(HedgePolicy{}))
		for range hedgeWarmup {
			resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
			require.NoError(t, err)
			resp.Body.Close()
		}
		start := time.Now()
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err)
		resp.Body.Close()
		assert.Less(t, time.Since(start), ms(25))
		assert.Equal(t, int32(hedgeWarmup+2), n.Load())
	})
}

func TestLatencyBuckets(t *testing.T) {
	for _, d := range []time.Duration{0, time.Microsecond, 3 * time.Microsecond, 4 * time.Microsecond,
		7 * time.Microsecond, ms(2), ms(10), time.Second, time.Hour, 1 << 62, -1} {
		i := latencyBucket(d)
		assert.GreaterOrEqual(t, bucketCeil(i), min(max(d, 0), bucketCeil(latencyBuckets-1)), "%v", d)
		if i > 0 && d < time.Hour {
			assert.Less(t, bucketCeil(i-1), d+time.Microsecond, "%v", d)
		}
	}
}

func TestLatenciesBounded(t *testing.T) {
	l := newLatencies(newBreakerSet(BreakerPolicy{}.normalized(), nil), 8)
	for i := range 100 {
		l.host(newRequest("GET", "http://h"+string(rune('a'+i%26))+string(rune('a'+i/26))+".example/", nil))
	}
	assert.LessOrEqual(t, len(l.m), 8)
}

// FuzzHedge drives the recommended stack with hedging over the scripted
// base of FuzzStack and checks the same invariants: response XOR error,
// every body closed, attempts (hedges included) within MaxAttempts, the
// total timeout kept, a POST without a key never hedged; and, through
// synctest, no goroutine left behind.
func FuzzHedge(f *testing.F) {
	f.Add(byte(0), []byte{2, 10, 4, 1, 2, 0})
	f.Add(byte(1), []byte{2, 200, 2, 1, 7, 0})
	f.Add(byte(4), []byte{2, 200, 2, 200, 2, 200})
	f.Add(byte(6), []byte{5, 39, 2, 12, 3, 0})
	f.Fuzz(func(t *testing.T, mode byte, script []byte) {
		synctest.Test(t, func(t *testing.T) {
			base := &fuzzBase{script: script}
			delay := time.Duration(mode>>3) * 50 * time.Millisecond
			rt := NewTransport(base, Recommended(), WithHedging(HedgePolicy{Delay: delay, MaxHedges: int(mode>>6) + 1}))
			method := http.MethodGet
			if mode&1 == 1 {
				method = http.MethodPost // no key: WithIdempotencyKey is left out below
				rt = NewTransport(base, WithRetry(RetryPolicy{}), WithHedging(HedgePolicy{Delay: delay}))
			}
			req, _ := http.NewRequest(method, "http://api.example/x", strings.NewReader("payload"))
			if mode&4 == 4 {
				req.Body = io.NopCloser(req.Body) // no GetBody: hedged once recorded whole
				req.GetBody = nil
			}
			start := time.Now()
			resp, err := rt.RoundTrip(req)
			if (resp == nil) == (err == nil) {
				t.Fatalf("response XOR error broken: %v, %v", resp, err)
			}
			if resp != nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if mode&1 == 0 && time.Since(start) > RecommendedTotalTimeout {
				t.Fatalf("call took %v, past the total timeout", time.Since(start))
			}
			synctest.Wait()
			base.mu.Lock()
			defer base.mu.Unlock()
			if n := len(base.outcomes); n > DefaultMaxAttempts {
				t.Fatalf("%d attempts, more than %d", n, DefaultMaxAttempts)
			}
			for _, b := range base.bodies {
				select {
				case <-b.closed:
				default:
					t.Fatal("a response body was never closed")
				}
			}
			if mode&1 == 1 {
				for i, o := range base.outcomes[:max(len(base.outcomes)-1, 0)] {
					if !o.neverReceived {
						t.Fatalf("POST without a key sent again after attempt %d (%+v)", i+1, o)
					}
				}
			}
		})
	})
}

// TestHedgingAloneAddsRetryLayer: WithHedging without WithRetry still
// hedges, with room for the first attempt and its hedge.
func TestHedgingAloneAddsRetryLayer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &lanes{delays: []time.Duration{time.Second, ms(5)}}
		rt := NewTransport(base, WithHedging(HedgePolicy{Delay: ms(50)}))
		start := time.Now()
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err)
		assert.Equal(t, ms(55), time.Since(start))
		assert.Equal(t, "answer", readAll(t, resp))
		synctest.Wait()
		assert.Equal(t, 2, base.count())
	})
}
