package resilientotel_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/resilient-go/resilient"
	resilientotel "github.com/resilient-go/resilient/otel"
)

// A call that meets 503, 503, 200, recorded by the observer. In a program
// the SDK providers are the global ones, set up with their exporters, and
// otelhttp.NewTransport around the stack starts the span of each call.
func ExampleObserver() {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))

	client := &http.Client{Transport: resilient.NewTransport(answers(503, 503, 200),
		resilient.WithRetry(resilient.RetryPolicy{InitialDelay: time.Millisecond, Jitter: resilient.JitterNone}),
		resilient.WithObserver(resilientotel.Observer(
			resilientotel.WithMeterProvider(mp),
			resilientotel.WithTracerProvider(tp))))}

	ctx, span := tp.Tracer("example").Start(context.Background(), "GET") // otelhttp's, in a program
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://api.example/orders/7", nil)
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	span.End()

	fmt.Println("status", resp.StatusCode)
	var rm metricdata.ResourceMetrics
	_ = reader.Collect(context.Background(), &rm)
	printMetrics(rm)
	printSpans(spans.Ended())
	// Output:
	// status 200
	// http.client.request.duration (s), per attempt:
	//   http.response.status_code=200 http.request.resend_count=2
	//   http.response.status_code=503 error.type=503
	//   http.response.status_code=503 error.type=503 http.request.resend_count=1
	// resilient.client.retries: 2 with resilient.retry.reason=backoff
	// span GET, events:
	//   resilient.retry resilient.retry.attempt=1 resilient.retry.wait=0.001 resilient.retry.reason=backoff
	//   resilient.retry resilient.retry.attempt=2 resilient.retry.wait=0.002 resilient.retry.reason=backoff
	// spans resilient.attempt: 3
}

// Tracing a resilient client with otelhttp: one trace per call. otelhttp
// around the stack makes the span of the call, otelhttp around the base a
// child span per attempt (and sends each attempt's own traceparent); the
// observer adds the retry events to the call's span and, since otelhttp
// makes the attempt spans, makes none itself (a no-op TracerProvider). In a
// program the providers are the global ones: otelhttp needs no option,
// the base is nil or your transport.
func Example_otelhttp() {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	base := answers(503, 503, 200) // in a program: nil, or your own transport

	client := &http.Client{Transport: otelhttp.NewTransport(
		resilient.NewTransport(otelhttp.NewTransport(base),
			resilient.WithRetry(resilient.RetryPolicy{InitialDelay: time.Millisecond, Jitter: resilient.JitterNone}),
			resilient.WithObserver(resilientotel.Observer(resilientotel.WithTracerProvider(noop.NewTracerProvider())))),
		otelhttp.WithTracerProvider(tp))}

	resp, err := client.Get("https://api.example/orders/7")
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close() // ends the spans of the call and of its last attempt

	// The attempts end in turn, the last one when the body is closed.
	ended := spans.Ended()
	call := ended[slices.IndexFunc(ended, func(s sdktrace.ReadOnlySpan) bool { return !s.Parent().IsValid() })]
	fmt.Printf("%s: the call, %d retry events\n", call.Name(), len(call.Events()))
	traceIDs := map[trace.TraceID]bool{}
	for _, s := range ended {
		traceIDs[s.SpanContext().TraceID()] = true
		if s.Parent().SpanID() == call.SpanContext().SpanID() {
			fmt.Printf("  %s: an attempt, child of the call, status %s\n", s.Name(), s.Status().Code)
		}
	}
	fmt.Println("traces:", len(traceIDs))
	// Output:
	// HTTP GET: the call, 2 retry events
	//   HTTP GET: an attempt, child of the call, status Error
	//   HTTP GET: an attempt, child of the call, status Error
	//   HTTP GET: an attempt, child of the call, status Unset
	// traces: 1
}

// answers is an in-memory transport that answers with statuses in turn.
func answers(statuses ...int) http.RoundTripper {
	var n atomic.Int32
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		i := min(int(n.Add(1)), len(statuses)) - 1
		return &http.Response{StatusCode: statuses[i], Header: http.Header{}, Body: http.NoBody, Request: req}, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// show prints the values of keys that set has, as key=value.
func show(set attribute.Set, keys ...attribute.Key) string {
	var out []string
	for _, k := range keys {
		if v, ok := set.Value(k); ok {
			out = append(out, fmt.Sprintf("%s=%s", k, v.String()))
		}
	}
	return strings.Join(out, " ")
}

func printMetrics(rm metricdata.ResourceMetrics) {
	for _, m := range rm.ScopeMetrics[0].Metrics {
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			var lines []string
			for _, dp := range d.DataPoints {
				lines = append(lines, "  "+show(dp.Attributes, "http.response.status_code", "error.type", "http.request.resend_count"))
			}
			slices.Sort(lines)
			fmt.Printf("%s (%s), per attempt:\n%s\n", m.Name, m.Unit, strings.Join(lines, "\n"))
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				fmt.Printf("%s: %d with %s\n", m.Name, dp.Value, show(dp.Attributes, resilientotel.ReasonKey))
			}
		}
	}
}

func printSpans(spans []sdktrace.ReadOnlySpan) {
	attempts := 0
	for _, s := range spans {
		if s.Name() == resilientotel.AttemptSpanName {
			attempts++
			continue
		}
		fmt.Printf("span %s, events:\n", s.Name())
		for _, ev := range s.Events() {
			set := attribute.NewSet(ev.Attributes...)
			fmt.Printf("  %s %s\n", ev.Name, show(set, resilientotel.AttemptKey, resilientotel.WaitKey, resilientotel.ReasonKey))
		}
	}
	fmt.Printf("spans %s: %d\n", resilientotel.AttemptSpanName, attempts)
}
