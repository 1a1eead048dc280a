package resilient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
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

func TestLogHeadersRedactionListExtendsAndNarrows(t *testing.T) {
	tests := []struct {
		name   string
		opts   []Option
		header string
		want   bool // logged in clear
	}{
		{"an idempotency key is an id, not a secret", nil, "Idempotency-Key", true},
		{"the X- form too", nil, "X-Idempotency-Key", true},
		{"the configured header too", []Option{WithIdempotencyKey(IdempotencyHeader("X-Request-Key"))}, "X-Request-Key", true},
		{"the configured header is not revealed without the layer", nil, "X-Request-Key", false},
		{"a key header stays secret", nil, "X-Api-Key", false},
		{"a token header stays secret", nil, "X-Request-Token", false},
		{"a plain header is logged", nil, "X-Request-Id", true},
		{"extended by a word", []Option{WithRedactHeaders("tenant")}, "X-Tenant-Id", false},
		{"a word also hides an idempotency key", []Option{WithRedactHeaders("idempotency")}, "Idempotency-Key", false},
		{"narrowed by a name", []Option{WithRevealHeaders("x-request-token")}, "X-Request-Token", true},
		{"reveal wins over the caller's own word", []Option{WithRedactHeaders("request"), WithRevealHeaders("X-Request-Token")}, "X-Request-Token", true},
		{"credentials are never revealed", []Option{WithRevealHeaders("Authorization")}, "Authorization", false},
		{"cookies are never revealed", []Option{WithRevealHeaders("Cookie")}, "Cookie", false},
		{"an empty word hides nothing", []Option{WithRedactHeaders("", "  ")}, "X-Request-Id", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return reply(r, 200, "ok"), nil })
			opts := append([]Option{WithLogger(logger), WithLogHeaders(tt.header)}, tt.opts...)
			c := &http.Client{Transport: NewTransport(base, opts...)}
			req, _ := http.NewRequest(http.MethodGet, "https://api.example/v1", nil)
			req.Header.Set(tt.header, "value-4711")
			resp, err := c.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			recs := records(t, &buf)
			require.NotEmpty(t, recs)
			headers := recs[0]["headers"].(map[string]any)
			if tt.want {
				assert.Equal(t, "value-4711", headers[http.CanonicalHeaderKey(tt.header)])
			} else {
				assert.Equal(t, redacted, headers[http.CanonicalHeaderKey(tt.header)])
				assert.NotContains(t, buf.String(), "value-4711")
			}
		})
	}
}

// TestLogQueryNamesOnlyOfPairs checks that only the names of name=value
// parts are listed; a bare token, which may be the secret itself, is
// counted.
func TestLogQueryNamesOnlyOfPairs(t *testing.T) {
	for _, tt := range []struct {
		query   string
		names   string
		unnamed int
	}{
		{"", "", 0},
		{"sk_live_SECRET", "", 1},
		{"page=2&sk_live_SECRET&cvc=1", "cvc,page", 1},
		{"a=1;sk_live_SECRET;b=2", "a,b", 1},
		{"=orphan-value", "", 1},
		{"a=1&a=2&debug=", "a,debug", 0},
		{"api%5Fkey=1&two+words=x", "api_key,two words", 0},
		{"&&;", "", 0},
		{"bad%zzname=1", "bad%zzname", 0},
	} {
		t.Run(tt.query, func(t *testing.T) {
			names, unnamed := queryNames(&url.URL{RawQuery: tt.query})
			assert.Equal(t, tt.names, names)
			assert.Equal(t, tt.unnamed, unnamed)
			assert.NotContains(t, names, "SECRET")
		})
	}
}

// secretURL holds a secret in every part that may carry one.
const secretURL = "https://apiuser_42:hunter2pw@api.example/v1/pay?token=sk_live_SECRET123&sk_bare_TOKEN99&page=2#access_token=frag_SECRET_777"

var urlSecrets = []string{"apiuser_42", "hunter2pw", "sk_live_SECRET123", "sk_bare_TOKEN99", "frag_SECRET_777", "access_token"}

// TestLogErrorScrubsEveryURLForm feeds safeError the texts that real
// errors hold: *url.Error (which quotes with %q), net/http's masked form,
// fmt %q and %s, escaped forms, parts of the URL on their own.
func TestLogErrorScrubsEveryURLForm(t *testing.T) {
	u, err := url.Parse(secretURL)
	require.NoError(t, err)
	// net/http's Client masks the password this way (stripPassword).
	masked := strings.Replace(u.String(), u.User.String()+"@", u.User.Username()+":***@", 1)
	noFrag := *u
	noFrag.Fragment = ""
	//lint:ignore SA1007 invalid on purpose: the parse error quotes the whole URL
	_, parseErr := url.Parse(secretURL + "%zz")
	require.Error(t, parseErr)
	cause := errors.New("connection reset by peer")
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"url.Error", &url.Error{Op: "Get", URL: u.String(), Err: cause}},
		{"url.Error, net/http masked password", &url.Error{Op: "Post", URL: masked, Err: cause}},
		{"url.Error, Redacted", &url.Error{Op: "Get", URL: u.Redacted(), Err: cause}},
		{"url.Error, no fragment", &url.Error{Op: "Get", URL: noFrag.String(), Err: cause}},
		{"url.Parse error", parseErr},
		{"%q", fmt.Errorf("fetching %q: %w", u.String(), cause)},
		{"%s", fmt.Errorf("fetching %s: %w", u, cause)},
		{"%q of url.URL", fmt.Errorf("fetching %q", u)},
		{"path-escaped", fmt.Errorf("proxy /fetch/%s failed", url.PathEscape(u.String()))},
		{"query-escaped", fmt.Errorf("callback=%s failed", url.QueryEscape(u.String()))},
		{"raw query", fmt.Errorf("bad query %s", u.RawQuery)},
		{"decoded query", fmt.Errorf("bad query %v", u.Query())},
		{"one value", fmt.Errorf("token %q revoked", "sk_live_SECRET123")},
		{"bare token", fmt.Errorf("unknown parameter sk_bare_TOKEN99")},
		{"fragment", fmt.Errorf("fragment %s", u.Fragment)},
		{"userinfo", fmt.Errorf("user %s", u.User)},
		{"password", fmt.Errorf("password %q rejected", "hunter2pw")},
		{"wrapped twice", fmt.Errorf("outer: %w", &url.Error{Op: "Get", URL: u.String(), Err: fmt.Errorf("inner %q", u.String())})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := safeError(tt.err, u)
			for _, s := range urlSecrets {
				assert.NotContains(t, got, s)
			}
			assert.NotContains(t, got, "***")
			assert.NotContains(t, got, "xxxxx")
		})
	}
	got := safeError(&url.Error{Op: "Get", URL: u.String(), Err: cause}, u)
	assert.Equal(t, `Get "https://api.example/v1/pay": connection reset by peer`, got, "the URL's safe form stays")
}

// TestLogErrorScrubsNetHTTPError scrubs the error of a real failed call.
func TestLogErrorScrubsNetHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close() // every call is refused
	raw := strings.Replace(secretURL, "https://", "http://", 1)
	raw = strings.Replace(raw, "api.example", addr, 1)
	req, err := http.NewRequest("GET", raw, nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.Error(t, err)
	got := safeError(err, req.URL)
	for _, s := range urlSecrets {
		assert.NotContains(t, got, s)
	}
	assert.Contains(t, got, `"http://`+addr+`/v1/pay"`, "the URL is whole, in its safe form")
}

// TestLogRecordsNoBareTokenNorFragment checks the records themselves.
func TestLogRecordsNoBareTokenNorFragment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, &url.Error{Op: r.Method, URL: r.URL.String(), Err: errors.New("boom")}
		})
		c := &http.Client{Transport: NewTransport(base, WithLogger(logger), WithRetry(RetryPolicy{MaxAttempts: 2}))}
		_, err := c.Get(secretURL)
		require.Error(t, err)
		out := buf.String()
		for _, s := range urlSecrets {
			assert.NotContains(t, out, s)
		}
		recs := records(t, &buf)
		require.NotEmpty(t, recs)
		for _, r := range recs {
			assert.Equal(t, "https://api.example/v1/pay", r["url"])
			assert.Equal(t, "page,token", r["query_params"])
			assert.EqualValues(t, 1, r["query_unnamed"])
			assert.Contains(t, r["error"], "boom")
		}
	})
}
