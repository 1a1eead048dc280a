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
		rt := NewTransport(base, WithTimeout(ms(300)), WithRetry(RetryPolicy{MaxAttempts: 2}), WithHedging(HedgePolicy{Delay: ms(20)}))
		resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
		require.NoError(t, err)
		assert.Equal(t, 503, resp.StatusCode)
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		assert.Len(t, b, len(big))
	})
}
