// Package resilientotel records what a [resilient] client does as
// OpenTelemetry metrics and trace events. It is one observer:
//
//	client := &http.Client{Transport: otelhttp.NewTransport(
//		resilient.NewTransport(nil, resilient.Recommended(),
//			resilient.WithObserver(resilientotel.Observer())))}
//
// otelhttp outside the stack makes one client span per call and measures
// the call; the observer adds what happens inside: each attempt, each retry
// and why, the circuit breakers. It is a module of its own, so that the
// resilient module depends on no OpenTelemetry package; it uses the
// OpenTelemetry API only, the SDK is the application's choice.
//
// # Metrics
//
// Following the HTTP client semantic conventions where they have a name:
//
//	http.client.request.duration                  histogram, s         per attempt
//	resilient.client.retries                      counter, {retry}     per retry
//	resilient.client.breaker.refused_calls        counter, {call}      per call refused by a breaker
//	resilient.client.retry_budget.exhausted_calls counter, {call}      per call denied a retry by the budget
//	resilient.client.breaker.state                gauge, {breaker}     per breaker and state
//
// http.client.request.duration is recorded once per attempt, with
// semconv's bucket boundaries and attributes: http.request.method (a method
// the conventions do not know becomes "_OTHER"), server.address,
// server.port (the scheme's default when the URL has none),
// http.response.status_code, error.type (the status for 4xx and 5xx, else
// [ErrorType] of a transport error), and http.request.resend_count on
// every attempt after the first. otelhttp around the stack records the same
// name once per call; the instrumentation scope ([ScopeName]) tells them
// apart. An attempt refused by an open breaker, never sent, is recorded
// with error.type "circuit_open" and a duration near zero.
//
// The three counters carry method, server.address and server.port; the
// retries counter also resilient.retry.reason ("backoff", "retry-after",
// "hedge"). A refused call is counted when it ends (its done event), once:
// a refused attempt is never retried, so it ends its call.
//
// # Breaker state: an observable gauge
//
// resilient.client.breaker.state reports, for each breaker
// (resilient.breaker.key) and each state (resilient.breaker.state:
// "closed", "half_open", "open"), 1 for the breaker's current state and 0
// for the others, as the conventions do for states (a "state set"): a sum
// by state counts the breakers in each, a filter on the key shows one host.
//
// It is a gauge over a map the observer keeps, not an up-down counter of
// transitions, because a state is a value, not a sum of changes: a gauge
// reads the same under cumulative and delta temporality, shows the closed
// state correctly (a breaker is born closed with no event, which an up-down
// counter would see as a -1), and its series are ours to bound. The map
// holds at most 500 breakers (1 500 series, under the SDK's default limit
// of 2 000 per instrument); when full, the one whose last transition is
// oldest makes room, a closed one first. A breaker appears at its first
// transition and keeps its last reported state; one that is never asked
// again stays as it was, as the breaker itself does.
//
// # Traces
//
// The observer starts no traces. On the span in the request's context —
// otelhttp's, or one the caller started — it adds an event
// "resilient.retry" per retry (resilient.retry.attempt, resilient.retry.wait
// in seconds, resilient.retry.reason, and the status or error.type of the
// attempt that failed) and an event "resilient.retry_budget.exhausted" when
// the budget denies a retry. For a call that was retried it also starts a
// child span "resilient.attempt" per attempt, with the attempt's metric
// attributes and an error status when error.type is set; see
// [WithTracerProvider] to turn those off.
//
// # One trace per call with otelhttp
//
// Where otelhttp sits decides what a trace shows. Around the stack, it
// makes the span of the call; around the base transport as well, a client
// span per attempt, a child of the call's, with the attempt's own status
// and traceparent, so that the server's spans hang under the attempt that
// reached them:
//
//	client.Transport = otelhttp.NewTransport(resilient.NewTransport(otelhttp.NewTransport(base), opts...))
//
// otelhttp makes the attempt spans then: give the observer a no-op
// TracerProvider (go.opentelemetry.io/otel/trace/noop) to keep its retry
// events on the call's span without a second span per attempt; see
// Example (Otelhttp). With otelhttp around the stack only, the observer's
// "resilient.attempt" spans stand for the attempts.
//
// [resilient.Wrap] of a client whose transport is already otelhttp puts
// the layers around otelhttp, not between two of it: each attempt is then
// a span with no call span above it, and, unless the request's context
// holds a span already, each one the root of a trace of its own (three
// attempts, three unrelated traces). For such a client, write
// client.Transport = otelhttp.NewTransport(resilient.NewTransport(client.Transport, opts...))
// instead: its otelhttp becomes the inner one.
//
// # Cardinality
//
// No attribute holds a URL path, a query, a header or a user id: hosts,
// ports, methods (normalised), statuses, error types and reasons only, and
// the breaker keys, which are scheme, host and port unless a
// [resilient.BreakerPolicy.Key] function says otherwise. Error text is
// never used.
package resilientotel
