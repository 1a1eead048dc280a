package resilientotel_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/resilient-go/resilient"
	resilientotel "github.com/resilient-go/resilient/otel"
)

// step is one scripted answer of a [script]: a status (with Retry-After
// when retryAfter is set) or an error; stall waits for the request's
// context to end.
type step struct {
	status     int
	retryAfter int
	err        error
	stall      bool
}

// script is an in-memory RoundTripper that answers with its steps in turn
// (the last one repeats), after latency. Inside a synctest bubble the
// latency and the stalls take no real time.
type script struct {
	latency time.Duration
	steps   []step
	mu      sync.Mutex
	n       int
}

func (s *script) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_, _ = io.Copy(io.Discard, req.Body)
		req.Body.Close()
	}
	s.mu.Lock()
	st := s.steps[min(s.n, len(s.steps)-1)]
	s.n++
	s.mu.Unlock()
	t := time.NewTimer(s.latency)
	defer t.Stop()
	select {
	case <-req.Context().Done():
		return nil, req.Context().Err()
	case <-t.C:
	}
	if st.stall {
		<-req.Context().Done()
		return nil, req.Context().Err()
	}
	if st.err != nil {
		return nil, st.err
	}
	h := http.Header{}
	if st.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(st.retryAfter))
	}
	return &http.Response{StatusCode: st.status, Header: h, Body: http.NoBody, Request: req}, nil
}

// telemetry is an SDK meter and tracer provider that keep what they get.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	mp     *sdkmetric.MeterProvider
	tp     *sdktrace.TracerProvider
}

func newTelemetry(t testing.TB) *telemetry {
	tel := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(tel.spans))
	t.Cleanup(func() {
		_ = tel.mp.Shutdown(context.Background())
		_ = tel.tp.Shutdown(context.Background())
	})
	return tel
}

// observer returns the observer under test, wired to tel.
func (tel *telemetry) observer() resilient.Option {
	return resilient.WithObserver(resilientotel.Observer(
		resilientotel.WithMeterProvider(tel.mp), resilientotel.WithTracerProvider(tel.tp)))
}

// metrics collects and returns the metrics of our scope, by name.
func (tel *telemetry) metrics(t testing.TB) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != resilientotel.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sum returns the int64 sum data points of the metric name, by attribute
// set, or nil when it has none.
func sum(t testing.TB, ms map[string]metricdata.Metrics, name string) map[attribute.Distinct]int64 {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		return nil
	}
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s: %T, want a Sum[int64]", name, m.Data)
	}
	out := map[attribute.Distinct]int64{}
	for _, dp := range s.DataPoints {
		out[dp.Attributes.Equivalent()] = dp.Value
	}
	return out
}

// get sends a GET to url through rt with ctx and returns the status, or
// the error.
func get(ctx context.Context, rt http.RoundTripper, method, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func set(kvs ...attribute.KeyValue) attribute.Set { return attribute.NewSet(kvs...) }
