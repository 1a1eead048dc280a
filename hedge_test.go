package resilient

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
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

// dripForever is a response body that yields a byte every millisecond
// until it is closed, whatever the context says.
type dripForever struct{ closed atomic.Bool }

func (b *dripForever) Read(p []byte) (int, error) {
	if b.closed.Load() {
		return 0, errors.New("closed")
	}
	time.Sleep(time.Millisecond)
	return copy(p, "x"), nil
}

func (b *dripForever) Close() error { b.closed.Store(true); return nil }

// TestHedgeDropDrainKeepsTotalTimeout: an answer dropped for the winner is
// drained only until the call's total timeout, even from a base transport
// that ignores the context.
func TestHedgeDropDrainKeepsTotalTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		drip := &dripForever{}
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				time.Sleep(ms(950))
				resp := reply(r, 503, "")
				resp.Body = drip
				return resp, nil
			}
			time.Sleep(ms(895))
			return reply(r, 200, "ok"), nil
		})
		rt := NewTransport(base, WithTotalTimeout(time.Second), WithRetry(RetryPolicy{MaxAttempts: 2}), WithHedging(HedgePolicy{Delay: ms(100)}))
		start := time.Now()
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		took := time.Since(start)
		require.NoError(t, err)
		assert.Equal(t, 200, resp.StatusCode)
		resp.Body.Close()
		assert.LessOrEqual(t, took, time.Second+time.Millisecond, "the total timeout holds, but for the read under way")
		assert.True(t, drip.closed.Load())
	})
}

// TestHedgeInvalidRequestNeverPanics: requests that no transport can send
// (nil URL, nil Header, a bad method or header value) fail with
// ErrInvalidRequest through the hedging layer, with no hedge and no panic.
func TestHedgeInvalidRequestNeverPanics(t *testing.T) {
	for name, mk := range map[string]func() *http.Request{
		"nil URL":    func() *http.Request { r := newRequest("GET", "http://api.example/", nil); r.URL = nil; return r },
		"nil Header": func() *http.Request { r := newRequest("GET", "http://api.example/", nil); r.Header = nil; return r },
		"bad method": func() *http.Request { r := newRequest("GET", "http://api.example/", nil); r.Method = "G T"; return r },
		"bad header": func() *http.Request {
			r := newRequest("GET", "http://api.example/", nil)
			r.Header.Set("X", "a\nb")
			return r
		},
		"empty host": func() *http.Request { r := newRequest("GET", "http://api.example/", nil); r.URL.Host = ""; return r },
		"opaque https": func() *http.Request {
			r := newRequest("GET", "http://api.example/", nil)
			r.URL.Scheme = "ftp"
			return r
		},
	} {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				for _, opts := range [][]Option{
					{Recommended(), WithHedging(HedgePolicy{Delay: ms(1)})},
					{WithHedging(HedgePolicy{})},
				} {
					rt := NewTransport(http.DefaultTransport, opts...)
					resp, err := rt.RoundTrip(mk())
					if err == nil {
						resp.Body.Close()
					}
					assert.Error(t, err)
				}
			})
		})
	}
}

// TestHedgeUnrecordableBodyStopsLooking: a body that can never be replayed
// (longer than MaxBufferedBody) is not hedged, and the round does not
// wake up every Delay to look again while its only attempt runs: with a
// delay of 1 ns that would spin for the whole attempt.
func TestHedgeUnrecordableBodyStopsLooking(t *testing.T) {
	for _, known := range []bool{true, false} {
		t.Run(map[bool]string{true: "ContentLength over the limit", false: "grows over the limit"}[known], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var calls atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					calls.Add(1)
					_, _ = io.Copy(io.Discard, r.Body)
					r.Body.Close()
					time.Sleep(ms(100))
					return reply(r, 200, "ok"), nil
				})
				rt := NewTransport(base, WithRetry(RetryPolicy{MaxBufferedBody: 10}), WithHedging(HedgePolicy{Delay: time.Nanosecond}))
				body := &countingBody{Reader: strings.NewReader(strings.Repeat("b", 100))}
				req, _ := http.NewRequest("PUT", "http://api.example/", body)
				if known {
					req.ContentLength = 100
				}
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, int32(1), calls.Load())
				assert.Equal(t, int32(1), body.closes.Load())
			})
		})
	}
}

// TestHedgeBasePanicReachesCaller: a base transport that panics inside an
// attempt's goroutine panics the caller's goroutine, which can recover
// it, instead of crashing the process; the other attempt is cancelled and
// waited for first.
func TestHedgeBasePanicReachesCaller(t *testing.T) {
	for _, which := range []int32{1, 2} {
		t.Run(map[int32]string{1: "first attempt", 2: "hedge"}[which], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var n atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					i := n.Add(1)
					if i == which {
						time.Sleep(ms(60))
						panic("base transport bug")
					}
					select {
					case <-time.After(time.Second):
						return reply(r, 200, "ok"), nil
					case <-r.Context().Done():
						return nil, r.Context().Err()
					}
				})
				rt := NewTransport(base, Recommended(), WithHedging(HedgePolicy{Delay: ms(50)}))
				var got any
				func() {
					defer func() { got = recover() }()
					resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
					if err == nil {
						resp.Body.Close()
					}
				}()
				assert.Equal(t, "base transport bug", got)
				synctest.Wait()
			})
		})
	}
}

// FuzzHedgeBodies drives hedged PUTs and keyed POSTs whose bodies have no
// GetBody (recorded) or have one, over a base scripted by the fuzz input
// (per attempt: how long before it reads the body, how long before it
// answers, and with what), and checks that the caller's body is closed
// exactly once, that every attempt that read its body to the end got all
// of it, and the invariants of FuzzHedge.
func FuzzHedgeBodies(f *testing.F) {
	f.Add(byte(0), []byte{0, 10, 0, 1, 0, 0})
	f.Add(byte(1), []byte{3, 9, 5, 0, 1, 8})
	f.Add(byte(2), []byte{0, 200, 2, 0, 1, 7, 0, 0, 0})
	f.Add(byte(7), []byte{1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Fuzz(func(t *testing.T, mode byte, script []byte) {
		synctest.Test(t, func(t *testing.T) {
			const payload = "0123456789abcdef"
			var (
				mu   sync.Mutex
				got  []string
				step int
			)
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				var readAfter, answerAfter, what byte
				if 3*step+2 < len(script) {
					readAfter, answerAfter, what = script[3*step], script[3*step+1], script[3*step+2]
				}
				step++
				mu.Unlock()
				sleep := func(b byte) bool {
					select {
					case <-time.After(time.Duration(b) * 10 * time.Millisecond):
						return true
					case <-r.Context().Done():
						return false
					}
				}
				if !sleep(readAfter) {
					r.Body.Close()
					return nil, r.Context().Err()
				}
				b, err := io.ReadAll(r.Body)
				r.Body.Close()
				if err == nil {
					mu.Lock()
					got = append(got, string(b))
					mu.Unlock()
				}
				if !sleep(answerAfter) {
					return nil, r.Context().Err()
				}
				switch what % 4 {
				case 0:
					return reply(r, 200, "ok"), nil
				case 1:
					return reply(r, 503, "busy"), nil
				case 2:
					return reply(r, 429, "slow", "Retry-After", "1"), nil
				}
				return nil, errors.New("connection reset")
			})
			rt := NewTransport(base, Recommended(), WithHedging(HedgePolicy{Delay: time.Duration(mode>>2) * 5 * time.Millisecond, MaxHedges: 2}))
			body := &countingBody{Reader: strings.NewReader(payload)}
			method := "PUT"
			if mode&1 == 1 {
				method = "POST" // keyed by WithIdempotencyKey
			}
			req, _ := http.NewRequest(method, "http://api.example/", body)
			if mode&2 == 2 {
				req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(payload)), nil }
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
			if d := time.Since(start); d > RecommendedTotalTimeout {
				t.Fatalf("call took %v", d)
			}
			synctest.Wait()
			if n := body.closes.Load(); n != 1 {
				t.Fatalf("the caller's body was closed %d times", n)
			}
			mu.Lock()
			defer mu.Unlock()
			if step > DefaultMaxAttempts {
				t.Fatalf("%d attempts", step)
			}
			for _, g := range got {
				if g != payload {
					t.Fatalf("an attempt read %q", g)
				}
			}
		})
	})
}

// ctxBody is a response body that, like net/http's, fails once the
// context of its request has ended.
type ctxBody struct {
	ctx context.Context
	r   io.Reader
}

func (b *ctxBody) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	return b.r.Read(p)
}

func (b *ctxBody) Close() error { return nil }

// TestHedgeKeptAnswerReadableAfterItsDeadline: a retryable answer that
// arrives in time and is kept while a hedge runs on past the first
// attempt's deadline is handed back whole (its body is read while its
// deadline holds), not with a body that fails to read.
func TestHedgeKeptAnswerReadableAfterItsDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		big := strings.Repeat("b", 32<<10)
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				time.Sleep(ms(50))
				resp := reply(r, 503, "")
				resp.Body = &ctxBody{ctx: r.Context(), r: strings.NewReader(big)}
				return resp, nil
			}
			<-r.Context().Done() // the hedge stalls until its own deadline
			return nil, r.Context().Err()
		})
		rt := NewTransport(base, WithAttemptTimeout(ms(300)), WithRetry(RetryPolicy{MaxAttempts: 2}), WithHedging(HedgePolicy{Delay: ms(20)}))
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Len(t, b, len(big))
	})
}

// closeSignal is a response body that closes ch when it is closed.
type closeSignal struct {
	io.ReadCloser
	once sync.Once
	ch   chan struct{}
}

func (b *closeSignal) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { close(b.ch) })
	return err
}

// TestHedgeConflictDoesNotWinWhileOriginalInFlight: a 409 Conflict to the
// hedge of a POST with an idempotency key is the server saying that the
// original is still being processed (Stripe, the IETF Idempotency-Key
// draft). While the original is in flight it neither wins nor cancels it:
// the caller gets the original's answer for the charge the server made.
// Once no earlier attempt is in flight, the 409 is the answer.
func TestHedgeConflictDoesNotWinWhileOriginalInFlight(t *testing.T) {
	tests := []struct {
		name     string
		fails    bool // the original's connection breaks once the hedge arrived
		attempts int  // MaxAttempts
		want     int
		sent     int32
	}{
		{"the original answers after the hedge's 409", false, 2, http.StatusCreated, 2},
		{"the original fails, no attempt left: the 409 is the answer", true, 2, http.StatusConflict, 2},
		{"the original fails, an attempt left: a retry fetches the stored answer", true, 3, http.StatusCreated, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				n       atomic.Int32
				charged atomic.Bool
				first   = make(chan struct{}) // the original reached the server
				second  = make(chan struct{}) // the hedge reached the server
				gone    = make(chan struct{}) // the original's handler returned
				held    = make(chan struct{}) // the client closed the 409's body
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				switch n.Add(1) {
				case 3: // the retry, once the server's first attempt is over
					w.WriteHeader(http.StatusCreated)
					_, _ = io.WriteString(w, "charged")
					return
				case 1:
					defer close(gone)
					close(first)
					if tt.fails {
						<-second
						conn, _, err := w.(http.Hijacker).Hijack()
						if err == nil {
							conn.Close()
						}
						return
					}
					select {
					case <-held: // the charge is done once the hedge was answered
					case <-r.Context().Done():
						return
					}
					charged.Store(true)
					w.WriteHeader(http.StatusCreated)
					_, _ = io.WriteString(w, "charged")
					return
				}
				close(second)
				if tt.fails {
					<-gone
				}
				w.WriteHeader(http.StatusConflict) // the same key, still in progress
				_, _ = io.WriteString(w, "in progress")
			}))
			defer srv.Close()
			tr := srv.Client().Transport.(*http.Transport)
			defer tr.CloseIdleConnections()
			var entered atomic.Int32
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if entered.Add(1) == 2 { // the hedge reaches the server second
					select {
					case <-first:
					case <-r.Context().Done():
						return nil, r.Context().Err()
					}
				}
				resp, err := tr.RoundTrip(r)
				if err == nil && resp.StatusCode == http.StatusConflict {
					resp.Body = &closeSignal{ReadCloser: resp.Body, ch: held}
				}
				return resp, err
			})
			c := &http.Client{Transport: NewTransport(base, Recommended(), WithRetry(RetryPolicy{MaxAttempts: tt.attempts, InitialDelay: time.Millisecond}),
				WithHedging(HedgePolicy{Delay: 50 * time.Millisecond}))}
			resp, err := c.Post(srv.URL+"/charges", "application/json", strings.NewReader(`{"amount":100}`))
			require.NoError(t, err)
			body := readAll(t, resp)
			assert.Equal(t, tt.want, resp.StatusCode, body)
			assert.Equal(t, !tt.fails, charged.Load())
			assert.Equal(t, tt.sent, n.Load(), "the original, its hedge and any retry")
		})
	}
}
