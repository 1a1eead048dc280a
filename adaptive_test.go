package resilient

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// kneeHost is an in-memory host whose latency is base up to knee attempts
// in flight, grows with the square of the excess past it, and which
// answers 503 at once beyond limit attempts.
type kneeHost struct {
	base        time.Duration
	knee, limit int32
	now         atomic.Int32
	refused     atomic.Int32
}

func (k *kneeHost) RoundTrip(r *http.Request) (*http.Response, error) {
	c := k.now.Add(1)
	defer k.now.Add(-1)
	if c > k.limit {
		k.refused.Add(1)
		return reply(r, 503, "busy"), nil
	}
	d := k.base
	if c > k.knee {
		x := float64(c) / float64(k.knee)
		d = time.Duration(float64(k.base) * x * x)
	}
	select {
	case <-time.After(d):
		return reply(r, 200, "ok"), nil
	case <-r.Context().Done():
		return nil, r.Context().Err()
	}
}

// crowd runs callers against rt for d and returns the latencies of the
// 2xx answers after the first warm seconds, and how many bulkhead
// refusals there were.
func crowd(t *testing.T, rt http.RoundTripper, callers int, d, warm time.Duration) (ok []time.Duration, refused int) {
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		start = time.Now()
	)
	for range callers {
		wg.Go(func() {
			for time.Since(start) < d {
				t0 := time.Now()
				resp, err := rt.RoundTrip(newRequest("GET", "http://api.example/", nil))
				if errors.Is(err, ErrBulkheadFull) {
					mu.Lock()
					refused++
					mu.Unlock()
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode == 200 && t0.Sub(start) > warm {
					mu.Lock()
					ok = append(ok, time.Since(t0))
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	slices.Sort(ok)
	return ok, refused
}

func TestAdaptiveConcurrencyFindsTheKnee(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host := &kneeHost{base: 10 * time.Millisecond, knee: 16, limit: 64}
		rt := NewTransport(host, WithAdaptiveConcurrency(AdaptivePolicy{}))
		ok, refused := crowd(t, rt, 64, 10*time.Second, 3*time.Second)
		require.NotEmpty(t, ok)
		p99 := ok[len(ok)*99/100]
		assert.LessOrEqual(t, p99, 2*host.base, "p99 within twice the latency at the knee")
		assert.Positive(t, refused, "the callers over the limit were refused")
		goodput := float64(len(ok)) / 7 // per second of the measured 7 s
		t.Logf("p99 %v, %.0f 2xx/s, %d refused", p99, goodput, refused)
		assert.GreaterOrEqual(t, goodput, 0.8*16/host.base.Seconds(), "near the host's best: knee / latency")
		lim := rt.(*Transport).rt.(*callTransport).bulkhead.host(newRequest("GET", "http://api.example/", nil)).limit
		assert.InDelta(t, 16, lim, 8, "the limit settles near the knee")
	})
}

func TestAdaptiveConcurrencyBacksOffOnOverloadAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host := &kneeHost{base: 10 * time.Millisecond, knee: 1000, limit: 4}
		rt := NewTransport(host, WithAdaptiveConcurrency(AdaptivePolicy{InitialLimit: 100}))
		_, _ = crowd(t, rt, 64, 5*time.Second, 0)
		h := rt.(*Transport).rt.(*callTransport).bulkhead.host(newRequest("GET", "http://api.example/", nil))
		assert.LessOrEqual(t, h.limit, 8, "503s cut the limit down to about what the host takes")
	})
}

func TestAdaptiveConcurrencyGrowsWhileLatencyHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		host := &kneeHost{base: 10 * time.Millisecond, knee: 1000, limit: 1000}
		rt := NewTransport(host, WithAdaptiveConcurrency(AdaptivePolicy{InitialLimit: 4, MaxLimit: 50}))
		_, _ = crowd(t, rt, 100, 5*time.Second, 0)
		h := rt.(*Transport).rt.(*callTransport).bulkhead.host(newRequest("GET", "http://api.example/", nil))
		assert.Equal(t, 50, h.limit, "up to MaxLimit while the host stays as fast")
	})
}

func TestAdaptivePolicyDefaults(t *testing.T) {
	assert.Equal(t, AdaptivePolicy{MinLimit: 1, MaxLimit: 1000, InitialLimit: 20}, AdaptivePolicy{}.normalized())
	assert.Equal(t, AdaptivePolicy{MinLimit: 5, MaxLimit: 5, InitialLimit: 5}, AdaptivePolicy{MinLimit: 5, MaxLimit: 2, InitialLimit: 1}.normalized())
}

func TestAdaptiveConcurrencyCapsOverTheWire(t *testing.T) {
	var g gauge
	arrived, release := make(chan struct{}, 6), make(chan struct{})
	url, base := loopbackServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		g.enter()
		defer g.leave()
		arrived <- struct{}{}
		<-release
	})
	c := &http.Client{Transport: NewTransport(base, WithAdaptiveConcurrency(AdaptivePolicy{InitialLimit: 2, MaxLimit: 2}))}
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			code, err := get(t, c, url)
			assert.NoError(t, err)
			assert.Equal(t, 200, code)
		})
	}
	<-arrived
	<-arrived
	for range 4 {
		_, err := get(t, c, url)
		require.ErrorIs(t, err, ErrBulkheadFull, "over the limit: refused at once, not sent")
	}
	close(release)
	wg.Wait()
	assert.EqualValues(t, 2, g.peak.Load())
}
