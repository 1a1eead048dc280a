package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/resilient-go/resilient"
)

// breakerScenario calls a partner during an outage and after it: the
// breaker opens after three failures, fails fast without touching the
// partner, lets a probe through after OpenTimeout and closes again.
func breakerScenario(out io.Writer, url string, outage *atomic.Bool, trace *tracer) {
	fmt.Fprintf(out, "\n7. a partner goes down: the circuit breaker opens, fails fast, probes, closes\n")
	client := &http.Client{Transport: resilient.NewTransport(trace,
		resilient.WithCircuitBreaker(resilient.BreakerPolicy{
			ConsecutiveFailures: 3,
			OpenTimeout:         time.Second,
			OnStateChange: func(key string, from, to resilient.State) {
				fmt.Fprintf(out, "  breaker %s: %s → %s\n", key, from, to)
			},
		}),
	)}
	trace.reset()
	outage.Store(true)
	call := func(n int) {
		resp, err := client.Get(url)
		var open *resilient.CircuitOpenError
		switch {
		case errors.As(err, &open):
			fmt.Fprintf(out, "  call %d: failed fast, not sent (next probe in %v)\n", n, open.RetryAfter.Round(10*time.Millisecond))
		case err != nil:
			fmt.Fprintf(out, "  call %d: error: %v\n", n, err)
		default:
			resp.Body.Close()
			fmt.Fprintf(out, "  call %d: %s\n", n, resp.Status)
		}
	}
	for n := 1; n <= 5; n++ {
		call(n)
	}
	outage.Store(false)
	fmt.Fprintln(out, "  … the partner recovers; one second later the breaker lets a probe through")
	time.Sleep(1100 * time.Millisecond)
	call(6)
	call(7)
}
