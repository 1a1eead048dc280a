package resilientotel_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/resilient-go/resilient"
	resilientotel "github.com/resilient-go/resilient/otel"
)

type typedErr struct{}

func (typedErr) Error() string     { return "user 42 not allowed" }
func (typedErr) ErrorType() string { return "forbidden_user" }

type plainErr struct{ user string }

func (e *plainErr) Error() string { return "failed for " + e.user }

func TestErrorType(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, "_OTHER"},
		{"open breaker", &resilient.CircuitOpenError{Key: "https://a.example"}, "circuit_open"},
		{"open breaker, wrapped", &url.Error{Op: "Get", URL: "https://a.example/x", Err: &resilient.RetryError{Attempts: 1, Err: &resilient.CircuitOpenError{}}}, "circuit_open"},
		{"attempt timeout", &resilient.TimeoutError{Scope: resilient.ScopeAttempt, After: time.Second}, "timeout"},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), "timeout"},
		{"net timeout", &net.OpError{Op: "read", Err: os.ErrDeadlineExceeded}, "timeout"},
		{"canceled", context.Canceled, "canceled"},
		{"body not replayable", errors.Join(io.ErrClosedPipe, resilient.ErrBodyNotReplayable), "body_not_replayable"},
		{"connection refused", refused, "connection_refused"},
		{"connection reset", &net.OpError{Op: "read", Err: os.NewSyscallError("read", syscall.ECONNRESET)}, "connection_reset"},
		{"eof", io.EOF, "eof"},
		{"unexpected eof", fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), "eof"},
		{"dns", &net.DNSError{Err: "no such host", Name: "secret.example", IsNotFound: true}, "dns"},
		{"ErrorType method", fmt.Errorf("call: %w", typedErr{}), "forbidden_user"},
		{"Go type, text ignored", &url.Error{Op: "Get", URL: "https://a.example/users/42", Err: &plainErr{user: "42"}}, "*resilientotel_test.plainErr"},
		{"text only", errors.New("user 42 said no"), "*errors.errorString"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := resilientotel.ErrorType(tt.err); got != tt.want {
				t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

// TestAttemptAttributes makes one call per case and checks the attributes
// of its attempt in the histogram.
func TestAttemptAttributes(t *testing.T) {
	tests := []struct {
		name, method, url string
		step              step
		timeout           time.Duration
		want              []attribute.KeyValue
	}{
		{"GET 200, https default port", "GET", "https://API.Example/a?q=1", step{status: 200},
			0, []attribute.KeyValue{semconv.HTTPRequestMethodGet, semconv.ServerAddress("api.example"), semconv.ServerPort(443), semconv.HTTPResponseStatusCode(200)}},
		{"POST 404, http default port", "POST", "http://a.example/pay", step{status: 404},
			0, []attribute.KeyValue{semconv.HTTPRequestMethodPost, semconv.ServerAddress("a.example"), semconv.ServerPort(80), semconv.HTTPResponseStatusCode(404), semconv.ErrorTypeKey.String("404")}},
		{"unknown method, explicit port", "PURGE", "https://a.example:8443/", step{status: 204},
			0, []attribute.KeyValue{semconv.HTTPRequestMethodOther, semconv.ServerAddress("a.example"), semconv.ServerPort(8443), semconv.HTTPResponseStatusCode(204)}},
		{"lower-case method is not GET", "get", "https://a.example/", step{status: 200},
			0, []attribute.KeyValue{semconv.HTTPRequestMethodOther, semconv.ServerAddress("a.example"), semconv.ServerPort(443), semconv.HTTPResponseStatusCode(200)}},
		{"connection refused", "DELETE", "http://[::1]:9/x", step{err: &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}},
			0, []attribute.KeyValue{semconv.HTTPRequestMethodDelete, semconv.ServerAddress("::1"), semconv.ServerPort(9), semconv.ErrorTypeKey.String("connection_refused")}},
		{"attempt timeout", "GET", "https://a.example/", step{stall: true},
			time.Second, []attribute.KeyValue{semconv.HTTPRequestMethodGet, semconv.ServerAddress("a.example"), semconv.ServerPort(443), semconv.ErrorTypeKey.String("timeout")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tel := newTelemetry(t)
				opts := []resilient.Option{tel.observer()}
				if tt.timeout > 0 {
					opts = append(opts, resilient.WithAttemptTimeout(tt.timeout))
				}
				rt := resilient.NewTransport(&script{steps: []step{tt.step}}, opts...)
				_, _ = get(context.Background(), rt, tt.method, tt.url)
				h := tel.metrics(t)["http.client.request.duration"].Data.(metricdata.Histogram[float64])
				if len(h.DataPoints) != 1 {
					t.Fatalf("%d points, want 1", len(h.DataPoints))
				}
				got, want := h.DataPoints[0].Attributes, set(tt.want...)
				if !got.Equals(&want) {
					t.Errorf("attributes\n got %s\nwant %s", got.Encoded(attribute.DefaultEncoder()), want.Encoded(attribute.DefaultEncoder()))
				}
			})
		})
	}
}

// TestRetryReasons counts retries by reason. The calls have no span in
// their context: they get no spans and no events, as the observer starts
// no traces.
func TestRetryReasons(t *testing.T) {
	tests := []struct {
		first  step
		reason string
	}{
		{step{status: 503}, "backoff"},
		{step{status: 429, retryAfter: 2}, "retry-after"},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tel := newTelemetry(t)
				rt := resilient.NewTransport(&script{steps: []step{tt.first, {status: 200}}},
					resilient.WithRetry(resilient.RetryPolicy{}), tel.observer())
				if status, err := get(context.Background(), rt, "GET", "https://a.example/"); status != 200 {
					t.Fatalf("got %d, %v; want 200", status, err)
				}
				want := set(semconv.HTTPRequestMethodGet, semconv.ServerAddress("a.example"), semconv.ServerPort(443), resilientotel.ReasonKey.String(tt.reason))
				if got := sum(t, tel.metrics(t), resilientotel.RetriesName); len(got) != 1 || got[want.Equivalent()] != 1 {
					t.Errorf("retries %v, want 1 for %s", got, want.Encoded(attribute.DefaultEncoder()))
				}
				if n := len(tel.spans.Started()); n != 0 {
					t.Errorf("%d spans started, want none", n)
				}
			})
		})
	}
}

// TestDefaults: no options, nil options and nil providers mean the global
// providers (no-ops here); nothing panics, even on odd events.
func TestDefaults(t *testing.T) {
	for _, obs := range []func(context.Context, resilient.Event){
		resilientotel.Observer(),
		resilientotel.Observer(nil, resilientotel.WithMeterProvider(nil), resilientotel.WithTracerProvider(nil)),
	} {
		for _, e := range []resilient.Event{
			{},
			{Kind: resilient.EventAttempt},
			{Kind: resilient.EventAttempt, Request: &http.Request{}, Attempt: 2, WaitReason: "backoff"},
			{Kind: resilient.EventDone, Err: resilient.ErrCircuitOpen},
			{Kind: resilient.EventBudgetExhausted},
			{Kind: resilient.EventBreaker, BreakerKey: "k", To: resilient.State(99)},
		} {
			obs(context.Background(), e)
		}
	}
}

// TestHedgeCountedAsRetry: a hedge (an attempt sent because the first was
// slow, Event.Reason "hedge") is counted with reason "hedge".
func TestHedgeCountedAsRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tel := newTelemetry(t)
		base := &script{steps: []step{{stall: true}, {status: 200}}}
		rt := resilient.NewTransport(base, resilient.WithRetry(resilient.RetryPolicy{}),
			resilient.WithHedging(resilient.HedgePolicy{Delay: 50 * time.Millisecond}), tel.observer())
		if status, err := get(context.Background(), rt, "GET", "https://a.example/"); status != 200 {
			t.Fatalf("got %d, %v; want 200", status, err)
		}
		want := set(semconv.HTTPRequestMethodGet, semconv.ServerAddress("a.example"), semconv.ServerPort(443), resilientotel.ReasonKey.String("hedge"))
		if got := sum(t, tel.metrics(t), resilientotel.RetriesName); got[want.Equivalent()] != 1 {
			t.Errorf("retries %v, want 1 with reason hedge", got)
		}
	})
}
