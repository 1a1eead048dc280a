package resilientotel

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/httpconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilient-go/resilient"
)

// ScopeName is the instrumentation scope of the meter and the tracer: the
// import path of this package. Metrics of the same name recorded by otelhttp
// are told apart from ours by it (otel_scope_name in Prometheus).
const ScopeName = "github.com/resilient-go/resilient/otel"

// Names of what the observer records, besides semconv's
// http.client.request.duration; the package doc describes each.
const (
	// RetriesName is the counter of retries, by reason.
	RetriesName = "resilient.client.retries"
	// RefusedCallsName is the counter of calls refused by a breaker.
	RefusedCallsName = "resilient.client.breaker.refused_calls"
	// ExhaustedName is the counter of calls denied a retry by the budget.
	ExhaustedName = "resilient.client.retry_budget.exhausted_calls"
	// BreakerStateName is the gauge of breaker states.
	BreakerStateName = "resilient.client.breaker.state"
	// RetryEventName is the span event of a retry.
	RetryEventName = "resilient.retry"
	// ExhaustedEventName is the span event of a retry denied by the budget.
	ExhaustedEventName = "resilient.retry_budget.exhausted"
	// AttemptSpanName is the span of one attempt of a retried call.
	AttemptSpanName = "resilient.attempt"
)

// Option configures [Observer]. Options are the With... functions of this
// package; other values cannot be passed.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	mp metric.MeterProvider
	tp trace.TracerProvider
}

// WithMeterProvider sets the MeterProvider that records the metrics.
// Default, or when mp is nil: [otel.GetMeterProvider], the global one,
// which forwards to a provider set later with otel.SetMeterProvider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.mp = mp })
}

// WithTracerProvider sets the TracerProvider that starts the attempt spans
// of retried calls (see the package doc). Default, or when tp is nil:
// [otel.GetTracerProvider]. The span events need no provider: they go on
// the span already in the request's context, whoever made it. Pass
// go.opentelemetry.io/otel/trace/noop's provider to keep the events and
// drop the attempt spans, for example when otelhttp also wraps the base
// transport and makes a span per attempt itself.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tp = tp })
}

// Observer returns an observer for [resilient.WithObserver] that records
// OpenTelemetry metrics and trace events; the package doc lists them.
// It is safe for concurrent use and returns quickly, as observers must.
//
// Each call registers one callback for the breaker state gauge with the
// MeterProvider, which keeps it for the provider's life: make one observer
// per client at start-up, not one per request.
func Observer(opts ...Option) func(context.Context, resilient.Event) {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.mp == nil {
		c.mp = otel.GetMeterProvider()
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return newObserver(c).observe
}

// observer holds the instruments of one [Observer].
type observer struct {
	duration  metric.Float64Histogram
	retries   metric.Int64Counter
	refused   metric.Int64Counter
	exhausted metric.Int64Counter
	breakers  *breakerStates
	sets      *setCache // of the duration's points
	tracer    trace.Tracer
}

func newObserver(c config) *observer {
	m := c.mp.Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	o := &observer{
		breakers: newBreakerStates(maxBreakers),
		sets:     &setCache{size: maxSets},
		tracer:   c.tp.Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL)),
	}
	// Errors come only from invalid names or options, ours; a noop
	// instrument keeps the observer working if a provider disagrees.
	d, err := httpconv.NewClientRequestDuration(m)
	o.duration = d.Inst()
	handle(err)
	o.retries = counter(m, RetriesName, "{retry}",
		"Retries made, by reason: backoff, retry-after or hedge.")
	o.refused = counter(m, RefusedCallsName, "{call}",
		"Calls that ended refused by an open or busy half-open circuit breaker.")
	o.exhausted = counter(m, ExhaustedName, "{call}",
		"Calls that ended without a retry that was due, because the client's retry budget was spent.")
	_, err = m.Int64ObservableGauge(BreakerStateName,
		metric.WithUnit("{breaker}"),
		metric.WithDescription("Circuit breakers by key and state: 1 for a breaker's current state, 0 for the others."),
		metric.WithInt64Callback(o.breakers.observe))
	handle(err)
	return o
}

func counter(m metric.Meter, name, unit, desc string) metric.Int64Counter {
	c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
	if err != nil {
		handle(err)
		return noop.Int64Counter{}
	}
	return c
}

func handle(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

// observe is the function handed to resilient.WithObserver.
func (o *observer) observe(ctx context.Context, e resilient.Event) {
	switch e.Kind {
	case resilient.EventAttempt:
		o.attempt(ctx, e)
	case resilient.EventDone:
		// Counted here, once per call: a refused attempt ends its call (it
		// is never retried), and the done event comes exactly once.
		if errors.Is(e.Err, resilient.ErrCircuitOpen) {
			var buf [3]attribute.KeyValue
			o.refused.Add(ctx, 1, metric.WithAttributes(pointOf(e.Request, 0, nil, 0).target(buf[:0])...))
		}
	case resilient.EventBudgetExhausted:
		var buf [3]attribute.KeyValue
		o.exhausted.Add(ctx, 1, metric.WithAttributes(pointOf(e.Request, 0, nil, 0).target(buf[:0])...))
		if span := trace.SpanFromContext(ctx); span.IsRecording() {
			span.AddEvent(ExhaustedEventName, trace.WithAttributes(AttemptKey.Int(e.Attempt)))
		}
	case resilient.EventBreaker:
		o.breakers.set(e.BreakerKey, e.To)
	}
}

// attempt records one attempt: its duration, the retry that follows it if
// any, and the trace events.
func (o *observer) attempt(ctx context.Context, e resilient.Event) {
	p := pointOf(e.Request, e.StatusCode, e.Err, max(e.Attempt-1, 0))
	o.duration.Record(ctx, e.Duration.Seconds(), metric.WithAttributeSet(o.sets.get(p)))
	// A retry is counted when it is decided (WaitReason); a hedge, which
	// no wait precedes, when its attempt ends (Reason).
	for _, reason := range [...]string{e.WaitReason, e.Reason} {
		if reason != "" {
			var buf [4]attribute.KeyValue
			o.retries.Add(ctx, 1, metric.WithAttributes(append(p.target(buf[:0]), ReasonKey.String(reason))...))
		}
	}
	o.trace(ctx, e, p)
}
