package resilientotel

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/resilient-go/resilient"
)

// trace tells the span in ctx (otelhttp's, around the stack, or the
// caller's own) about a call that is retried:
//
//   - an event "resilient.retry" on that span per retry, with the attempt
//     that ended, the wait, its reason and the attempt's status or error
//     type, so that one span tells the whole story;
//   - a child span "resilient.attempt" per attempt of a retried call, back-
//     dated to when the attempt was sent, so that a trace view draws the
//     attempts and the waits between them to scale. A call made in one
//     attempt gets none: the span around it says all there is.
//
// Without a valid span in ctx nothing is recorded: the observer does not
// start traces of its own.
func (o *observer) trace(ctx context.Context, e resilient.Event, p point) {
	parent := trace.SpanFromContext(ctx)
	if !parent.SpanContext().IsValid() {
		return
	}
	retried := e.WaitReason != ""
	if retried && parent.IsRecording() {
		kvs := make([]attribute.KeyValue, 0, 5)
		kvs = append(kvs, AttemptKey.Int(e.Attempt), WaitKey.Float64(e.Wait.Seconds()), ReasonKey.String(e.WaitReason))
		parent.AddEvent(RetryEventName, trace.WithAttributes(p.outcome(kvs)...))
	}
	if !retried && e.Attempt <= 1 {
		return
	}
	end := time.Now()
	_, span := o.tracer.Start(ctx, AttemptSpanName,
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithTimestamp(end.Add(-e.Duration)),
		trace.WithAttributes(p.attrs()...))
	if p.errType != "" {
		span.SetStatus(codes.Error, p.errType)
	}
	span.End(trace.WithTimestamp(end))
}
