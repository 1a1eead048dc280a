package resilientotel_test

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/resilient-go/resilient"
	resilientotel "github.com/resilient-go/resilient/otel"
)

// cycleServer answers 503, 503, 200 in turn, again and again, and keeps the
// traceparent header of each request.
type cycleServer struct {
	*httptest.Server
	mu           sync.Mutex
	n            int
	traceparents []string
}

func newCycleServer(t *testing.T) *cycleServer {
	s := &cycleServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.traceparents = append(s.traceparents, r.Header.Get("Traceparent"))
		s.n++
		status := []int{503, 503, 200}[(s.n-1)%3]
		s.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s
}

var fastRetry = resilient.WithRetry(resilient.RetryPolicy{InitialDelay: time.Millisecond, Jitter: resilient.JitterNone})

// traces groups spans by trace, each trace's spans in the order they
// ended.
func traces(spans []sdktrace.ReadOnlySpan) map[trace.TraceID][]sdktrace.ReadOnlySpan {
	out := map[trace.TraceID][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		id := s.SpanContext().TraceID()
		out[id] = append(out[id], s)
	}
	return out
}

func statusOf(s sdktrace.ReadOnlySpan) int64 {
	for _, kv := range s.Attributes() {
		if kv.Key == "http.response.status_code" {
			return kv.Value.AsInt64()
		}
	}
	return 0
}

// The composition doc.go recommends: otelhttp around the stack makes the
// call's span, otelhttp around the base a child span per attempt, each
// attempt's traceparent names its own span, and the observer puts the
// retry events on the call's span (its attempt spans off: otelhttp makes
// them).
func TestOtelhttpAroundAndInsideTheStackMakeOneTracePerCall(t *testing.T) {
	tel := newTelemetry(t)
	srv := newCycleServer(t)
	otelOpts := []otelhttp.Option{otelhttp.WithTracerProvider(tel.tp), otelhttp.WithPropagators(propagation.TraceContext{})}
	rt := otelhttp.NewTransport(
		resilient.NewTransport(otelhttp.NewTransport(srv.Client().Transport, otelOpts...),
			fastRetry,
			resilient.WithObserver(resilientotel.Observer(resilientotel.WithTracerProvider(noop.NewTracerProvider())))),
		otelOpts...)

	const calls = 2
	for range calls {
		if status, err := get(t.Context(), rt, "GET", srv.URL); status != 200 || err != nil {
			t.Fatalf("call: %d, %v; want 200", status, err)
		}
	}

	byTrace := traces(tel.spans.Ended())
	if len(byTrace) != calls {
		t.Fatalf("%d traces for %d calls, want one per call", len(byTrace), calls)
	}
	var sent []string // the traceparent each attempt sent, as the spans say
	for id, spans := range byTrace {
		// The call's span and its attempts', which end in turn (the last
		// one after the call's, when the body is closed).
		roots := slices.DeleteFunc(slices.Clone(spans), func(s sdktrace.ReadOnlySpan) bool { return s.Parent().IsValid() })
		if len(roots) != 1 || roots[0].SpanKind() != trace.SpanKindClient {
			t.Errorf("trace %s: %d spans without a parent, want 1: the call's client span", id, len(roots))
			continue
		}
		call := roots[0]
		attempts := slices.DeleteFunc(spans, func(s sdktrace.ReadOnlySpan) bool { return s == call })
		var statuses []int64
		for _, a := range attempts {
			if a.Parent().SpanID() != call.SpanContext().SpanID() || a.SpanKind() != trace.SpanKindClient {
				t.Errorf("trace %s: span %q has parent %v, kind %v; want a client span under the call's", id, a.Name(), a.Parent().SpanID(), a.SpanKind())
			}
			statuses = append(statuses, statusOf(a))
			sent = append(sent, "00-"+id.String()+"-"+a.SpanContext().SpanID().String()+"-01")
		}
		if want := []int64{503, 503, 200}; !slices.Equal(statuses, want) {
			t.Errorf("trace %s: attempt spans with statuses %v, want %v", id, statuses, want)
		}
		var retries int
		for _, e := range call.Events() {
			if e.Name == resilientotel.RetryEventName {
				retries++
			}
		}
		if retries != 2 {
			t.Errorf("trace %s: %d %s events on the call's span, want 2", id, retries, resilientotel.RetryEventName)
		}
	}
	slices.Sort(sent)
	got := slices.Sorted(slices.Values(srv.traceparents))
	if !slices.Equal(got, sent) {
		t.Errorf("the server saw traceparents\n%q\nwant each attempt's own span\n%q", got, sent)
	}
}

// What resilient.Wrap does to a client whose transport is otelhttp: the
// layers go around it, so each attempt starts a span of its own with
// nothing above it, a trace per attempt and no span for the call.
func TestWrapAroundAnOtelhttpClientMakesATracePerAttempt(t *testing.T) {
	tel := newTelemetry(t)
	srv := newCycleServer(t)
	traced := &http.Client{Transport: otelhttp.NewTransport(srv.Client().Transport, otelhttp.WithTracerProvider(tel.tp))}
	client := resilient.Wrap(traced, fastRetry)

	if status, err := get(t.Context(), client.Transport, "GET", srv.URL); status != 200 || err != nil {
		t.Fatalf("call: %d, %v; want 200", status, err)
	}

	spans := tel.spans.Ended()
	byTrace := traces(spans)
	if len(spans) != 3 || len(byTrace) != 3 {
		t.Fatalf("%d spans in %d traces, want 3 in 3: one trace per attempt", len(spans), len(byTrace))
	}
	for _, s := range spans {
		if s.Parent().IsValid() {
			t.Errorf("span %q has parent %v, want none: no span stands for the call", s.Name(), s.Parent().SpanID())
		}
	}
}
