package resilient

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// records parses the JSON lines a slog JSON handler wrote.
func records(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		out = append(out, m)
	}
	return out
}

func TestLoggingFieldsAndRedaction(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		base := &script{steps: steps(status(503, "Retry-After", "2"), fail(errReset), status(200))}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{Jitter: JitterNone}), WithLogger(logger),
			WithLogHeaders("X-Request-Id", "Authorization", "X-Api-Key", "Cookie", "X-Tenant-Secretish", "X-Custom"),
			WithRedactHeaders("custom"))}
		req, _ := http.NewRequest("GET", "https://alice:hunter2@api.example/v1/cards?card_number=4242424242424242&cvc=123", nil)
		req.Header.Set("Authorization", "Bearer sk_live_supersecret")
		req.Header.Set("X-Api-Key", "apikey-123")
		req.Header.Set("Cookie", "session=cookie-value-xyz")
		req.Header.Set("X-Request-Id", "req-77")
		req.Header.Set("X-Custom", "custom-value-9")
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()

		out := buf.String()
		for _, secret := range []string{"4242424242424242", "123&", "=123", "sk_live_supersecret", "apikey-123", "cookie-value-xyz", "hunter2", "alice", "custom-value-9"} {
			assert.NotContains(t, out, secret)
		}
		recs := records(t, &buf)
		require.Len(t, recs, 4, out)

		first := recs[0]
		assert.Equal(t, "WARN", first["level"])
		assert.Equal(t, "http attempt failed, retrying", first["msg"])
		assert.Equal(t, "GET", first["method"])
		assert.Equal(t, "https://api.example/v1/cards", first["url"])
		assert.Equal(t, "card_number,cvc", first["query_params"])
		assert.EqualValues(t, 503, first["status"])
		assert.EqualValues(t, 1, first["attempt"])
		assert.EqualValues(t, 3, first["max_attempts"])
		assert.Equal(t, "retry-after", first["retry_reason"])
		assert.EqualValues(t, 2e9, first["retry_in"])
		headers := first["headers"].(map[string]any)
		assert.Equal(t, "req-77", headers["X-Request-Id"])
		for _, h := range []string{"Authorization", "X-Api-Key", "Cookie", "X-Custom"} {
			assert.Equal(t, redacted, headers[h], h)
		}

		second := recs[1]
		assert.Equal(t, "WARN", second["level"])
		assert.Contains(t, second["error"], "connection reset")
		assert.Equal(t, "backoff", second["retry_reason"])

		assert.Equal(t, "DEBUG", recs[2]["level"])
		assert.Equal(t, "http attempt", recs[2]["msg"])
		final := recs[3]
		assert.Equal(t, "DEBUG", final["level"])
		assert.Equal(t, "http call", final["msg"])
		assert.EqualValues(t, 3, final["attempt"])
		assert.EqualValues(t, 200, final["status"])
	})
}

func TestLoggingLevels(t *testing.T) {
	tests := []struct {
		name  string
		step  func(*http.Request) (*http.Response, error)
		level string
		msg   string
	}{
		{"success", status(200), "DEBUG", "http call"},
		{"4xx", status(404), "INFO", "http call"},
		{"5xx", status(500), "ERROR", "http call failed"},
		{"error", fail(errRefused), "ERROR", "http call failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := &http.Client{Transport: NewTransport(&script{steps: steps(tt.step)}, WithLogger(logger))}
			resp, err := c.Get("http://api.example/")
			if err == nil {
				resp.Body.Close()
			}
			recs := records(t, &buf)
			last := recs[len(recs)-1]
			assert.Equal(t, tt.level, last["level"])
			assert.Equal(t, tt.msg, last["msg"])
		})
	}
}

func TestLoggingBreakerTransitions(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c := &http.Client{Transport: NewTransport(&script{steps: steps(status(500))}, WithLogger(logger),
		WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))}
	resp, err := c.Get("http://api.example/x?token=abc")
	require.NoError(t, err)
	resp.Body.Close()
	_, err = c.Get("http://api.example/x?token=abc")
	require.ErrorIs(t, err, ErrCircuitOpen)
	out := buf.String()
	assert.Contains(t, out, `"msg":"circuit breaker opened","breaker":"http://api.example","from":"closed","to":"open"`)
	assert.NotContains(t, out, "abc")
}

// traceHandler adds a trace id from the context, as OpenTelemetry bridges do.
type traceHandler struct{ slog.Handler }

type traceKey struct{}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(traceKey{}).(string); ok {
		r.AddAttrs(slog.String("trace_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func TestLoggingUsesRequestContext(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(traceHandler{slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})})
	c := &http.Client{Transport: NewTransport(&script{steps: steps(status(200))}, WithLogger(logger))}
	req, _ := http.NewRequestWithContext(context.WithValue(context.Background(), traceKey{}, "trace-9"), "GET", "http://api.example/", nil)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	for _, r := range records(t, &buf) {
		assert.Equal(t, "trace-9", r["trace_id"])
	}
}

func TestObserverSeesEveryAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var mu sync.Mutex
		var events []Event
		obs := func(_ context.Context, e Event) {
			mu.Lock()
			defer mu.Unlock()
			events = append(events, e)
		}
		base := &script{steps: steps(status(503), fail(errReset), status(200))}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{}), WithObserver(obs), WithObserver(nil))}
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		resp.Body.Close()
		require.Len(t, events, 4)
		kinds := []EventKind{events[0].Kind, events[1].Kind, events[2].Kind, events[3].Kind}
		assert.Equal(t, []EventKind{EventAttempt, EventAttempt, EventAttempt, EventDone}, kinds)
		assert.Equal(t, 503, events[0].StatusCode)
		assert.Equal(t, "backoff", events[0].WaitReason)
		assert.ErrorIs(t, events[1].Err, errReset.Err)
		assert.Equal(t, 200, events[2].StatusCode)
		assert.Empty(t, events[2].WaitReason)
		assert.Equal(t, 3, events[3].Attempt)
		assert.Equal(t, "api.example", events[3].Request.URL.Host)
	})
}

func TestLoggingBudgetExhausted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
		base := &script{steps: steps(status(503))}
		c := &http.Client{Transport: NewTransport(base, WithLogger(logger),
			WithRetry(RetryPolicy{MaxAttempts: 5, Budget: RetryBudget{MinPerSecond: 0.1}}))}
		resp, err := c.Get("http://api.example/x")
		require.NoError(t, err)
		resp.Body.Close()
		var found bool
		for _, r := range records(t, &buf) {
			if r["msg"] == "retry budget exhausted" {
				found = true
				assert.Equal(t, "WARN", r["level"])
				assert.Equal(t, "http://api.example/x", r["url"])
				assert.EqualValues(t, 2, r["attempt"])
				assert.NotContains(t, r, "status")
			}
		}
		assert.True(t, found, buf.String())
	})
}
