package resilient

import (
	"net/http"
	"time"
)

// Middleware is one layer of the stack: it wraps a RoundTripper in another.
// Every layer of this package is available on its own as a Middleware
// ([AttemptTimeout], [TotalTimeout], [Retry], [CircuitBreaker],
// [IdempotencyKey]), for callers who assemble their own chain;
// [NewTransport] assembles them in the right order, and only it shares one
// timer per attempt between the timeouts and wires the logger and observers.
type Middleware func(next http.RoundTripper) http.RoundTripper

// Retry is the layer of [WithRetry] on its own.
func Retry(p RetryPolicy) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return newCall(next, callOptions{retry: &p, chained: true})
	}
}

// AttemptTimeout is the layer of [WithAttemptTimeout] on its own. A zero or
// negative d returns next unchanged.
func AttemptTimeout(d time.Duration) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return newCall(next, callOptions{attempt: d, chained: true})
	}
}

// TotalTimeout is the layer of [WithTotalTimeout] on its own. A zero or
// negative d returns next unchanged.
func TotalTimeout(d time.Duration) Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return newCall(next, callOptions{total: d, chained: true})
	}
}

// CircuitBreaker is the layer of [WithCircuitBreaker] on its own.
func CircuitBreaker(p BreakerPolicy) Middleware {
	return func(next http.RoundTripper) http.RoundTripper { return newBreaker(next, p, nil) }
}

// IdempotencyKey is the layer of [WithIdempotencyKey] on its own. Put it
// outside any retrying layer, so that every attempt carries the same key.
// A nil next RoundTripper means [http.DefaultTransport].
func IdempotencyKey(opts ...IdempotencyOption) Middleware {
	var c config
	WithIdempotencyKey(opts...).apply(&c)
	return c.idempotency.layer
}
