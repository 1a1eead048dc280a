package bench

import (
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/hedgepolicy"
	"github.com/failsafe-go/failsafe-go/timeout"

	"github.com/resilient-go/resilient"
)

// HedgeStack is one contender of the hedging scenario.
type HedgeStack struct {
	Name string
	New  func(base http.RoundTripper) Doer
}

// HedgeStacks are the contenders of scenario 8: our stack without and
// with hedging (its default adaptive delay, and a fixed 10 ms), and
// failsafe-go's hedge policy (a fixed 10 ms, and its p95 quantile).
var HedgeStacks = []HedgeStack{
	{"resilient, no hedging", func(base http.RoundTripper) Doer { return newResilient(base, Default) }},
	{"resilient, default hedging (p95, floor 10 ms)", hedgedResilient(resilient.HedgePolicy{})},
	{"resilient, hedge after 10 ms", hedgedResilient(resilient.HedgePolicy{Delay: 10 * time.Millisecond})},
	{"failsafe-go, hedge after 10 ms", hedgedFailsafe(hedgepolicy.NewWithDelay[*http.Response](10 * time.Millisecond))},
	{"failsafe-go, hedge at p95", hedgedFailsafe(hedgepolicy.NewWithDelayQuantile[*http.Response](0.95, 200, 20))},
}

// Hedged is the contender of scenario 8 for one of [Stacks]: resilient
// with its default hedging, failsafe-go with its hedge policy after 10 ms,
// and the others as they are, since they have no hedging.
func Hedged(s Stack) HedgeStack {
	switch s.Name {
	case "resilient":
		return HedgeStacks[1]
	case "failsafe-go":
		return HedgeStacks[3]
	}
	return HedgeStack{Name: s.Name, New: func(base http.RoundTripper) Doer { return s.New(base, Default) }}
}

func hedgedResilient(p resilient.HedgePolicy) func(http.RoundTripper) Doer {
	return func(base http.RoundTripper) Doer {
		return clientDoer(&http.Client{Transport: resilient.NewTransport(base,
			resilient.WithAttemptTimeout(10*time.Second),
			resilient.WithRetry(resilient.RetryPolicy{MaxAttempts: 3}),
			resilient.WithCircuitBreaker(resilient.BreakerPolicy{ConsecutiveFailures: 5, OpenTimeout: 30 * time.Second}),
			resilient.WithHedging(p))})
	}
}

func hedgedFailsafe(h hedgepolicy.HedgePolicy[*http.Response]) func(http.RoundTripper) Doer {
	return func(base http.RoundTripper) Doer {
		policies := []failsafe.Policy[*http.Response]{
			failsafehttp.NewRetryPolicyBuilder().WithMaxRetries(2).WithBackoff(Default.Initial, Default.Max).ReturnLastFailure().Build(),
			h,
			timeout.New[*http.Response](10 * time.Second),
		}
		return clientDoer(&http.Client{Transport: failsafehttp.NewRoundTripper(base, policies...)})
	}
}

// HedgeResult is what scenario 8 measured for one stack.
type HedgeResult struct {
	Calls, Requests int
	P50, P99        time.Duration
}

// Extra is the share of requests sent beyond one per call.
func (r HedgeResult) Extra() float64 {
	if r.Calls == 0 {
		return 0
	}
	return float64(r.Requests-r.Calls) / float64(r.Calls)
}

// Hedging (scenario 8) runs goroutines of GET calls for d against a
// loopback server where 5 % of the requests take 1 s and the others 2 ms,
// and returns the calls' latency percentiles and the requests the server
// received.
func Hedging(s HedgeStack, goroutines int, d time.Duration) HedgeResult {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		pause := 2 * time.Millisecond
		if rand.N(100) < 5 {
			pause = time.Second
		}
		answerAfter(w, r, pause)
	}))
	defer srv.Close()
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = goroutines * 2
	defer base.CloseIdleConnections()
	do := s.New(base)

	var (
		mu    sync.Mutex
		took  []time.Duration
		wg    sync.WaitGroup
		start = time.Now()
	)
	for range goroutines {
		wg.Go(func() {
			var mine []time.Duration
			for time.Since(start) < d {
				t0 := time.Now()
				if _, err := do(context.Background(), "GET", srv.URL, nil); err != nil {
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			took = append(took, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	srv.Close() // waits for the handlers of cancelled hedges
	slices.Sort(took)
	r := HedgeResult{Calls: len(took), Requests: int(requests.Load())}
	if len(took) > 0 {
		r.P50, r.P99 = took[len(took)/2], took[len(took)*99/100]
	}
	return r
}

// answerAfter answers "ok" after pause, or nothing when the client gives up
// first: the slow host of the hedging and overload scenarios.
func answerAfter(w http.ResponseWriter, r *http.Request, pause time.Duration) {
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-t.C:
		_, _ = io.WriteString(w, "ok")
	case <-r.Context().Done():
	}
}
