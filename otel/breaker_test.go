package resilientotel_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/resilient-go/resilient"
	resilientotel "github.com/resilient-go/resilient/otel"
)

// breakerGauge returns the state gauge's points: key -> state -> value.
func breakerGauge(t *testing.T, ms map[string]metricdata.Metrics) map[string]map[string]int64 {
	t.Helper()
	m, ok := ms[resilientotel.BreakerStateName]
	if !ok {
		return nil
	}
	if m.Unit != "{breaker}" {
		t.Errorf("breaker state unit %q, want {breaker}", m.Unit)
	}
	g, ok := m.Data.(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("breaker state: %T, want a Gauge[int64]", m.Data)
	}
	out := map[string]map[string]int64{}
	for _, dp := range g.DataPoints {
		k, _ := dp.Attributes.Value(resilientotel.BreakerKeyKey)
		s, _ := dp.Attributes.Value(resilientotel.BreakerStateKey)
		if out[k.AsString()] == nil {
			out[k.AsString()] = map[string]int64{}
		}
		out[k.AsString()][s.AsString()] = dp.Value
	}
	return out
}

// TestBreaker trips a breaker, has a call refused, and lets it close again:
// the state gauge follows each transition, the refusal is counted once.
func TestBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		base := &script{steps: []step{{status: 503}, {status: 503}, {status: 200}}}
		rt := resilient.NewTransport(base,
			resilient.WithCircuitBreaker(resilient.BreakerPolicy{ConsecutiveFailures: 2, OpenTimeout: 30 * time.Second}),
			tel.observer())
		const url = "http://api.example:8080/pay"
		key := "http://api.example:8080"
		target := []attribute.KeyValue{semconv.HTTPRequestMethodPost, semconv.ServerAddress("api.example"), semconv.ServerPort(8080)}
		call := func() error { _, err := get(context.Background(), rt, http.MethodPost, url); return err }

		steps := []struct {
			name    string
			before  time.Duration // time to let pass first
			wantErr error
			state   string
			refused int64
		}{
			{name: "first 503", state: ""}, // no transition yet: not listed
			{name: "second 503 trips it", state: "open"},
			{name: "refused", wantErr: resilient.ErrCircuitOpen, state: "open", refused: 1},
			{name: "probe after the open timeout closes it", before: 30*time.Second + time.Millisecond, state: "closed", refused: 1},
		}
		for _, s := range steps {
			time.Sleep(s.before) // fake time: the bubble's clock jumps
			if err := call(); !errors.Is(err, s.wantErr) {
				t.Fatalf("%s: error %v, want %v", s.name, err, s.wantErr)
			}
			ms := tel.metrics(t)
			g := breakerGauge(t, ms)
			if s.state == "" {
				if len(g) != 0 {
					t.Errorf("%s: gauge %v, want none", s.name, g)
				}
			} else {
				want := map[string]int64{"closed": 0, "half_open": 0, "open": 0}
				want[s.state] = 1
				if len(g) != 1 || !equalMap(g[key], want) {
					t.Errorf("%s: gauge %v, want %s: %v", s.name, g, key, want)
				}
			}
			refused := sum(t, ms, resilientotel.RefusedCallsName)
			tgt := set(target...)
			if got := refused[tgt.Equivalent()]; got != s.refused || len(refused) > 1 {
				t.Errorf("%s: refused calls %v, want %d", s.name, refused, s.refused)
			}
		}

		// The refused attempt is in the histogram as circuit_open.
		h := tel.metrics(t)["http.client.request.duration"].Data.(metricdata.Histogram[float64])
		want := set(append(target[:3:3], semconv.ErrorTypeKey.String("circuit_open"))...)
		found := false
		for _, dp := range h.DataPoints {
			if dp.Attributes.Equals(&want) {
				found = dp.Count == 1
			}
		}
		if !found {
			t.Errorf("no single attempt point with %v", want.Encoded(attribute.DefaultEncoder()))
		}
	})
}

func equalMap(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestBudgetExhausted spends a small retry budget: the second retry is
// denied, counted, and told on the span.
func TestBudgetExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		base := &script{steps: []step{{status: 503}}}
		rt := resilient.NewTransport(base,
			resilient.WithRetry(resilient.RetryPolicy{
				MaxAttempts: 3, InitialDelay: time.Second, Jitter: resilient.JitterNone,
				Budget: resilient.RetryBudget{Ratio: 0.01, MinPerSecond: 0.1, Window: 10 * time.Second}, // one retry
			}),
			tel.observer())
		ctx, span := tel.tp.Tracer("test").Start(context.Background(), "call")
		status, err := get(ctx, rt, http.MethodGet, "https://api.example/")
		span.End()
		if err != nil || status != 503 {
			t.Fatalf("got %d, %v; want the last 503", status, err)
		}
		target := set(semconv.HTTPRequestMethodGet, semconv.ServerAddress("api.example"), semconv.ServerPort(443))
		ms := tel.metrics(t)
		if got := sum(t, ms, resilientotel.ExhaustedName); len(got) != 1 || got[target.Equivalent()] != 1 {
			t.Errorf("exhausted calls %v, want 1 for %v", got, target.Encoded(attribute.DefaultEncoder()))
		}
		if got := sum(t, ms, resilientotel.RetriesName); len(got) != 1 {
			t.Errorf("retries %v, want one series", got)
		}
		var names []string
		for _, ev := range tel.spans.Ended()[len(tel.spans.Ended())-1].Events() {
			names = append(names, ev.Name)
		}
		if want := []string{resilientotel.RetryEventName, resilientotel.ExhaustedEventName}; !equalStrings(names, want) {
			t.Errorf("span events %v, want %v", names, want)
		}
	})
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
