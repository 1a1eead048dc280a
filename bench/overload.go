package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/failsafehttp"

	"github.com/resilient-go/resilient"
)

// KneeServer is the host of the overload scenario: Base latency up to
// Knee requests in flight, growing with the square of the excess past it
// (a host that thrashes), and a 503 at once beyond Cap in flight.
type KneeServer struct {
	Base      time.Duration
	Knee, Cap int64
}

// DefaultKneeServer is the host of the table: 20 ms up to 32 requests in
// flight, 503 beyond 128.
var DefaultKneeServer = KneeServer{Base: 20 * time.Millisecond, Knee: 32, Cap: 128}

// OverloadStack is one contender of the overload scenario.
type OverloadStack struct {
	Name string
	New  func(base http.RoundTripper) http.RoundTripper
}

// OverloadStacks are the contenders: no limit, our fixed bulkhead at the
// knee (which a guess rarely hits), our adaptive limit, and failsafe-go's
// adaptive limiter with its defaults (through failsafehttp), each
// refusing at once over its limit.
var OverloadStacks = []OverloadStack{
	{"no limit", func(base http.RoundTripper) http.RoundTripper { return base }},
	{"resilient, fixed limit 32 (the knee)", func(base http.RoundTripper) http.RoundTripper {
		return resilient.NewTransport(base, resilient.WithConcurrencyLimit(resilient.ConcurrencyPolicy{Limit: 32}))
	}},
	{"resilient, adaptive (defaults)", func(base http.RoundTripper) http.RoundTripper {
		return resilient.NewTransport(base, resilient.WithAdaptiveConcurrency(resilient.AdaptivePolicy{}))
	}},
	{"failsafe-go adaptivelimiter (defaults)", func(base http.RoundTripper) http.RoundTripper {
		return failsafehttp.NewRoundTripper(base, adaptivelimiter.NewBuilder[*http.Response]().Build())
	}},
}

// OverloadResult is what the overload scenario measured for one stack,
// after the warm-up.
type OverloadResult struct {
	Goodput       float64       // 2xx answers per second
	P50, P99      time.Duration // of the calls answered 2xx
	Refused, Shed int           // calls refused by the client's limit; 503s of the server
}

// Overload runs callers goroutines of GET calls through s for warm + d
// against srv on loopback and measures the last d. A caller whose call is
// refused or answered 503 pauses 5 ms before its next call.
func Overload(s OverloadStack, srv KneeServer, callers int, warm, d time.Duration) OverloadResult {
	var inflight atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := inflight.Add(1)
		defer inflight.Add(-1)
		if c > srv.Cap {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		pause := srv.Base
		if c > srv.Knee {
			x := float64(c) / float64(srv.Knee)
			pause = time.Duration(float64(srv.Base) * x * x)
		}
		answerAfter(w, r, pause)
	}))
	defer hs.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = callers * 2
	defer base.CloseIdleConnections()
	c := &http.Client{Transport: s.New(base)}

	var (
		mu            sync.Mutex
		took          []time.Duration
		refused, shed int
		wg            sync.WaitGroup
		from          = time.Now().Add(warm)
		until         = from.Add(d)
	)
	for range callers {
		wg.Go(func() {
			var mine []time.Duration
			var ref, sh int
			for time.Now().Before(until) {
				t0 := time.Now()
				req, _ := http.NewRequestWithContext(context.Background(), "GET", hs.URL, nil)
				resp, err := c.Do(req)
				counted := t0.After(from)
				if err != nil {
					if counted {
						ref++
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					if counted {
						sh++
					}
					time.Sleep(5 * time.Millisecond)
					continue
				}
				if counted && time.Now().Before(until) {
					mine = append(mine, time.Since(t0))
				}
			}
			mu.Lock()
			took, refused, shed = append(took, mine...), refused+ref, shed+sh
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(took)
	r := OverloadResult{Goodput: float64(len(took)) / d.Seconds(), Refused: refused, Shed: shed}
	if len(took) > 0 {
		r.P50, r.P99 = took[len(took)/2], took[len(took)*99/100]
	}
	return r
}
