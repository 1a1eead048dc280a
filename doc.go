// Package resilient makes outbound HTTP calls survive the real world:
// timeouts per attempt and per call, retries with exponential backoff and
// jitter that are safe for non-idempotent requests, Retry-After honoured
// within limits, and a circuit breaker per host that fails fast while a host
// is down and recovers by itself. Everything is an [http.RoundTripper], so it wraps an existing
// [http.Client], composes with other RoundTrippers (OpenTelemetry, auth) and
// tests against httptest servers like any client.
//
// # Quick start
//
// One client for the process, used as any *http.Client; the package's
// Example shows a whole call, a POST with an idempotency key:
//
//	client := resilient.New(resilient.Recommended()) // 10 s per attempt, 30 s per call, 3 attempts, a breaker per host
//	resp, err := client.Get("https://api.partner.example/v1/rates")
//
// To add the layers to a client you have, use [Wrap]; to build the transport
// only, [NewTransport].
//
// # Layers
//
// Each option adds one layer; a layer whose option is not given is absent.
// The order of the layers is fixed by the package, not by the order of the
// options (client.go is the one place that knows it):
//
//	caller
//	  └ idempotency key                WithIdempotencyKey: the same key on every attempt
//	     └ fallback                    WithFallback: a response instead of a final error
//	                                   (WithFallbackOn: or of a final response it picks)
//	        └ total timeout            WithTotalTimeout: every attempt, wait and the final body
//	           └ retry                 WithRetry: backoff, Retry-After, body replay,
//	                                   the per-host throttle gate; WithHedging, WithLimiter,
//	                                   WithConcurrencyLimit / WithAdaptiveConcurrency: a slot
//	                                   per attempt; WithRequestPolicy: one request's overrides
//	              └ circuit breaker    WithCircuitBreaker: per host, asked by every attempt
//	                 └ attempt timeout WithAttemptTimeout: headers and body of one attempt
//	                    └ base transport (http.DefaultTransport clone, or yours)
//
// [Recommended] stacks them all with sensible defaults. [WithLogger] and
// [WithObserver] see every attempt, every retry decision, every breaker
// transition and the outcome of each call.
//
// # Composing with other transports
//
// [Wrap] and [NewTransport] put the layers around the transport they are
// given: an auth transport that signs each request belongs inside (as the
// base, so every attempt is signed afresh); instrumentation that should see
// the whole call, such as otelhttp, belongs outside. One otelhttp transport
// on each side gives a trace per call with a span per attempt:
//
//	client.Transport = otelhttp.NewTransport(resilient.NewTransport(otelhttp.NewTransport(base), opts...))
//
// A transport that is already a [*Transport] is never wrapped a second
// time: wrapping it again merges the options into one stack, so attempts
// do not multiply.
//
// # Slow and throttled hosts
//
// Retries mend a call that failed; two more parts of the retry layer deal
// with hosts that are slow or ask clients to slow down:
//   - [WithHedging] sends a second attempt of an idempotent request that
//     has had no answer after a delay (by default the host's 95th
//     percentile of latency, at least 10 ms) and keeps the first good
//     answer; hedges are attempts, paid from the retry budget and never
//     sent to a host whose breaker is not closed;
//   - the throttle gate, on whenever retries are, remembers per host a 429
//     or 503 with Retry-After, and RateLimit fields saying the quota is
//     used up: the calls that would be sent meanwhile wait for the time the
//     host gave, when that fits their deadline and MaxRetryAfter, or fail
//     at once with [ErrThrottled] (a [*ThrottledError] with the time left),
//     instead of each learning it from a request of its own. While no gate
//     is closed it costs a call one atomic load;
//   - [WithLimiter] paces attempts on the client's side; the module
//     github.com/resilient-go/resilient/ratelimit has a token bucket per
//     host on golang.org/x/time/rate (WithRateLimit).
//
// # Guarantees
//
// The layers keep the [http.RoundTripper] contract:
//   - the caller's request is never changed; a layer that needs another
//     context or body works on a copy;
//   - every response body that is not handed back is drained (a bounded
//     amount, so its connection is reused) and closed, and the request body
//     is closed on every path, as the base transport would;
//   - a call returns a response or an error, never both; when retries end on
//     a response, that response is returned whole with a nil error, whatever
//     its status;
//   - every wait selects on the request context, and a wait that cannot end
//     before the context's deadline is not started;
//   - a timeout's context lives until the response body is read to EOF or
//     closed, so a body that arrives in time is read whole;
//   - a request that is not idempotent (POST, PATCH) is sent again only when it
//     carries an Idempotency-Key header or when the server provably never
//     processed it (the connection was refused, or it answered 429);
//   - request bodies are replayed exactly: through Request.GetBody when the
//     request has it (no copy), otherwise from a bounded recording made while
//     the first attempt streams the body (nothing is read before an attempt
//     starts, so no wait runs outside a deadline); a body larger than the
//     recording is sent once and not retried;
//   - the circuit breaker judges the host only: a request that cannot be sent
//     ([ErrInvalidRequest]), a body of the caller's that held an attempt up
//     or failed, a base transport that broke this contract
//     ([ErrNilResponse]) and the caller's own cancellation are never retried
//     and never counted against the host;
//   - deadlines hold: an attempt's clock starts when it is sent, a response
//     that is retried is drained only while the client waits anyway, and a
//     call never outlives its total timeout; when a further attempt is not
//     sent (the breaker refused it, or no time was left), the last response
//     is handed back whole instead of an error about an attempt that never
//     happened. One limit comes from net/http: over HTTP/1.1 its Transport
//     returns only once it stopped writing the request body, so a caller's
//     body producer that stalls holds the call until it yields, as with a
//     plain http.Client (HTTP/2 returns at the deadline);
//   - all types are safe for concurrent use, and no goroutine outlives its
//     call: the attempts that lose to a hedge are cancelled, waited for,
//     and their bodies drained and closed before the call returns.
//
// Errors are usable with [errors.Is] and [errors.As]: a call that ends on a
// transport error returns a [*RetryError] with the number of attempts, and a
// timeout of the stack is a [*TimeoutError] that is also
// context.DeadlineExceeded and a net.Error whose Timeout() is true, and a
// request refused by an open breaker fails with [ErrCircuitOpen] (a
// [*CircuitOpenError] that says which host and when the next probe goes).
package resilient
