package resilientotel_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilient-go/resilient"
	resilientotel "github.com/resilient-go/resilient/otel"
)

// semconv's advised boundaries for http.client.request.duration.
var bounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// attemptPoint is the histogram point of one attempt of 20 ms.
func attemptPoint(kvs ...attribute.KeyValue) metricdata.HistogramDataPoint[float64] {
	counts := make([]uint64, len(bounds)+1)
	counts[2] = 1 // (0.01, 0.025]
	return metricdata.HistogramDataPoint[float64]{
		Attributes: set(kvs...), Count: 1, Sum: 0.02, Bounds: bounds, BucketCounts: counts,
		Min: metricdata.NewExtrema(0.02), Max: metricdata.NewExtrema(0.02),
	}
}

// TestScriptedCall sends one GET that meets 503, 503, 200, inside a
// parent span as otelhttp would make, and checks every metric and span.
func TestScriptedCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		base := &script{latency: 20 * time.Millisecond, steps: []step{{status: 503}, {status: 503}, {status: 200}}}
		rt := resilient.NewTransport(base,
			resilient.WithRetry(resilient.RetryPolicy{
				MaxAttempts: 3, InitialDelay: 100 * time.Millisecond, Jitter: resilient.JitterNone,
				Budget: resilient.RetryBudget{Disabled: true},
			}),
			tel.observer())

		ctx, parent := tel.tp.Tracer("test").Start(context.Background(), "GET", trace.WithSpanKind(trace.SpanKindClient))
		status, err := get(ctx, rt, http.MethodGet, "https://API.example/v1/users/42?token=secret")
		parent.End()
		if err != nil || status != 200 {
			t.Fatalf("got %d, %v; want 200", status, err)
		}

		target := []attribute.KeyValue{semconv.HTTPRequestMethodGet, semconv.ServerAddress("api.example"), semconv.ServerPort(443)}
		with := func(kvs ...attribute.KeyValue) []attribute.KeyValue { return append(target[:3:3], kvs...) }
		unavailable := []attribute.KeyValue{semconv.HTTPResponseStatusCode(503), semconv.ErrorTypeKey.String("503")}

		ms := tel.metrics(t)
		metricdatatest.AssertEqual(t, metricdata.Metrics{
			Name:        "http.client.request.duration",
			Description: "Duration of HTTP client requests.",
			Unit:        "s",
			Data: metricdata.Histogram[float64]{
				Temporality: metricdata.CumulativeTemporality,
				DataPoints: []metricdata.HistogramDataPoint[float64]{
					attemptPoint(with(unavailable...)...),
					attemptPoint(with(append(unavailable, semconv.HTTPRequestResendCount(1))...)...),
					attemptPoint(with(semconv.HTTPResponseStatusCode(200), semconv.HTTPRequestResendCount(2))...),
				},
			},
		}, ms["http.client.request.duration"], metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
		metricdatatest.AssertEqual(t, metricdata.Metrics{
			Name:        resilientotel.RetriesName,
			Description: "Retries made, by reason: backoff, retry-after or hedge.",
			Unit:        "{retry}",
			Data: metricdata.Sum[int64]{
				Temporality: metricdata.CumulativeTemporality, IsMonotonic: true,
				DataPoints: []metricdata.DataPoint[int64]{{Attributes: set(with(resilientotel.ReasonKey.String("backoff"))...), Value: 2}},
			},
		}, ms[resilientotel.RetriesName], metricdatatest.IgnoreTimestamp(), metricdatatest.IgnoreExemplars())
		for _, name := range []string{resilientotel.RefusedCallsName, resilientotel.ExhaustedName, resilientotel.BreakerStateName} {
			if m, ok := ms[name]; ok {
				t.Errorf("%s recorded with no breaker and no budget: %+v", name, m.Data)
			}
		}

		// The parent span: one event per retry.
		spans := tel.spans.Ended()
		var root sdktrace.ReadOnlySpan
		var attempts []sdktrace.ReadOnlySpan
		for _, s := range spans {
			switch s.Name() {
			case "GET":
				root = s
			case resilientotel.AttemptSpanName:
				attempts = append(attempts, s)
			default:
				t.Errorf("unexpected span %q", s.Name())
			}
		}
		if root == nil {
			t.Fatal("no parent span ended")
		}
		events := root.Events()
		wantEvents := [][]attribute.KeyValue{
			append([]attribute.KeyValue{resilientotel.AttemptKey.Int(1), resilientotel.WaitKey.Float64(0.1), resilientotel.ReasonKey.String("backoff")}, unavailable...),
			append([]attribute.KeyValue{resilientotel.AttemptKey.Int(2), resilientotel.WaitKey.Float64(0.2), resilientotel.ReasonKey.String("backoff")}, unavailable...),
		}
		if len(events) != len(wantEvents) {
			t.Fatalf("%d events on the parent span, want %d: %+v", len(events), len(wantEvents), events)
		}
		start := root.StartTime()
		for i, ev := range events {
			if ev.Name != resilientotel.RetryEventName {
				t.Errorf("event %d: %q, want %q", i, ev.Name, resilientotel.RetryEventName)
			}
			if got, want := set(ev.Attributes...), set(wantEvents[i]...); !got.Equals(&want) {
				t.Errorf("event %d attributes:\n got %v\nwant %v", i, got.Encoded(attribute.DefaultEncoder()), want.Encoded(attribute.DefaultEncoder()))
			}
		}
		// Attempt i+1 ends at 20 ms + its waits: 20, 140, 360 ms.
		for i, at := range []time.Duration{20 * time.Millisecond, 140 * time.Millisecond} {
			if got := events[i].Time.Sub(start); got != at {
				t.Errorf("event %d at %v, want %v", i, got, at)
			}
		}

		// A child span per attempt, drawn to scale.
		if len(attempts) != 3 {
			t.Fatalf("%d attempt spans, want 3", len(attempts))
		}
		for i, s := range attempts {
			sent := []time.Duration{0, 120 * time.Millisecond, 340 * time.Millisecond}[i]
			if s.Parent().SpanID() != root.SpanContext().SpanID() {
				t.Errorf("attempt %d: parent %v, want the call's span", i+1, s.Parent().SpanID())
			}
			if got := s.StartTime().Sub(start); got != sent {
				t.Errorf("attempt %d sent at %v, want %v", i+1, got, sent)
			}
			if got := s.EndTime().Sub(s.StartTime()); got != 20*time.Millisecond {
				t.Errorf("attempt %d took %v, want 20ms", i+1, got)
			}
			wantCode := codes.Error
			if i == 2 {
				wantCode = codes.Unset
			}
			if s.Status().Code != wantCode {
				t.Errorf("attempt %d status %v, want %v", i+1, s.Status(), wantCode)
			}
			if s.SpanKind() != trace.SpanKindInternal {
				t.Errorf("attempt %d kind %v, want internal", i+1, s.SpanKind())
			}
		}
		noSecrets(t, ms, spans)
	})
}

// noSecrets fails if any attribute holds the path, the query or the
// original case of the host.
func noSecrets(t *testing.T, ms map[string]metricdata.Metrics, spans []sdktrace.ReadOnlySpan) {
	t.Helper()
	check := func(where string, kvs []attribute.KeyValue) {
		for _, kv := range kvs {
			v := kv.Value.String()
			if strings.Contains(v, "/v1") || strings.Contains(v, "secret") || strings.Contains(v, "42") {
				t.Errorf("%s: attribute %s=%q leaks the URL", where, kv.Key, v)
			}
		}
	}
	for name, m := range ms {
		switch d := m.Data.(type) {
		case metricdata.Histogram[float64]:
			for _, dp := range d.DataPoints {
				check(name, dp.Attributes.ToSlice())
			}
		case metricdata.Sum[int64]:
			for _, dp := range d.DataPoints {
				check(name, dp.Attributes.ToSlice())
			}
		}
	}
	for _, s := range spans {
		if s.Name() == "GET" {
			continue // the caller's span, not ours
		}
		check(s.Name(), s.Attributes())
	}
}
