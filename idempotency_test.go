package resilient

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestIdempotencyKeys(t *testing.T) {
	tests := []struct {
		name   string
		method string
		header string // the caller's own key header, if any
		ctxKey string // the caller's context key, if any
		opts   []IdempotencyOption
		want   func(t *testing.T, keys []string)
	}{
		{"POST gets a UUIDv4, the same on every attempt", "POST", "", "", nil, func(t *testing.T, keys []string) {
			require.Len(t, keys, 3)
			assert.Regexp(t, uuidV4, keys[0])
			assert.Equal(t, []string{keys[0], keys[0], keys[0]}, keys)
		}},
		{"PATCH gets one too", "PATCH", "", "", nil, func(t *testing.T, keys []string) {
			assert.Regexp(t, uuidV4, keys[0])
		}},
		{"GET gets none", "GET", "", "", nil, func(t *testing.T, keys []string) {
			assert.Equal(t, []string{"", "", ""}, keys)
		}},
		{"caller's header kept", "POST", "caller-key-1", "", nil, func(t *testing.T, keys []string) {
			assert.Equal(t, []string{"caller-key-1", "caller-key-1", "caller-key-1"}, keys)
		}},
		{"context key used", "POST", "", "order-42-charge", nil, func(t *testing.T, keys []string) {
			assert.Equal(t, []string{"order-42-charge", "order-42-charge", "order-42-charge"}, keys)
		}},
		{"context key on a GET too", "GET", "", "report-7", nil, func(t *testing.T, keys []string) {
			assert.Equal(t, "report-7", keys[0])
		}},
		{"structured field form", "POST", "", "order-42", []IdempotencyOption{IdempotencyStructuredField()}, func(t *testing.T, keys []string) {
			assert.Equal(t, `"order-42"`, keys[0])
		}},
		{"structured field escapes", "POST", "", `a"b\c`, []IdempotencyOption{IdempotencyStructuredField()}, func(t *testing.T, keys []string) {
			assert.Equal(t, `"a\"b\\c"`, keys[0])
		}},
		{"own generator", "POST", "", "", []IdempotencyOption{IdempotencyGenerator(func() (string, error) { return "gen-1", nil })}, func(t *testing.T, keys []string) {
			assert.Equal(t, "gen-1", keys[0])
		}},
		{"own methods", "PUT", "", "", []IdempotencyOption{IdempotencyMethods("PUT")}, func(t *testing.T, keys []string) {
			assert.Regexp(t, uuidV4, keys[0])
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &script{steps: steps(status(503), status(503), status(200))}
				c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{}), WithIdempotencyKey(tt.opts...))}
				ctx := context.Background()
				if tt.ctxKey != "" {
					ctx = ContextWithIdempotencyKey(ctx, tt.ctxKey)
				}
				req, _ := http.NewRequestWithContext(ctx, tt.method, "http://api.example/charges", strings.NewReader("{}"))
				if tt.header != "" {
					req.Header.Set("Idempotency-Key", tt.header)
				}
				before := req.Header.Clone()
				resp, err := c.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				assert.Equal(t, before, req.Header, "caller's headers untouched")
				var keys []string
				for _, call := range base.calls {
					keys = append(keys, call.key)
				}
				tt.want(t, keys)
			})
		})
	}
}

// TestIdempotencyKeyLetsPOSTRetry: with the layer, a POST that gets a 503
// is retried; without it, not.
func TestIdempotencyKeyLetsPOSTRetry(t *testing.T) {
	for _, withKeys := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			base := &script{steps: steps(status(503), status(200))}
			opts := []Option{WithRetry(RetryPolicy{})}
			if withKeys {
				opts = append(opts, WithIdempotencyKey())
			}
			c := &http.Client{Transport: NewTransport(base, opts...)}
			resp, err := c.Post("http://api.example/charges", "application/json", strings.NewReader(`{"amount":1}`))
			require.NoError(t, err)
			resp.Body.Close()
			if withKeys {
				assert.Equal(t, 200, resp.StatusCode)
				assert.Equal(t, 2, base.attempts())
				assert.Equal(t, `{"amount":1}`, base.calls[1].body)
			} else {
				assert.Equal(t, 503, resp.StatusCode)
				assert.Equal(t, 1, base.attempts())
			}
		})
	}
}

func TestIdempotencyKeysDistinctAcrossCalls(t *testing.T) {
	base := &script{steps: steps(status(200))}
	c := &http.Client{Transport: NewTransport(base, WithIdempotencyKey())}
	seen := map[string]bool{}
	for range 100 {
		resp, err := c.Post("http://api.example/charges", "text/plain", nil)
		require.NoError(t, err)
		resp.Body.Close()
	}
	for _, call := range base.calls {
		assert.False(t, seen[call.key], "key %s reused", call.key)
		seen[call.key] = true
	}
	assert.Len(t, seen, 100)
}

func TestIdempotencyKeyRejected(t *testing.T) {
	tests := map[string]string{
		"CRLF injection": "k\r\nX-Evil: 1",
		"LF":             "k\nx",
		"NUL":            "k\x00",
		"DEL":            "k\x7f",
		"too long":       strings.Repeat("k", 256),
		"empty":          "",
	}
	for name, key := range tests {
		t.Run(name, func(t *testing.T) {
			base := &script{steps: steps(status(200))}
			rt := NewTransport(base, WithIdempotencyKey())
			body := &closeCounter{Reader: strings.NewReader("{}")}
			req, _ := http.NewRequestWithContext(ContextWithIdempotencyKey(context.Background(), key), "POST", "http://api.example/", body)
			resp, err := rt.RoundTrip(req)
			assert.Nil(t, resp)
			assert.ErrorIs(t, err, ErrInvalidIdempotencyKey)
			assert.Equal(t, 0, base.attempts(), "nothing sent")
			assert.Equal(t, 1, body.closes)
		})
	}
	// A generator failure is an error too.
	base := &script{steps: steps(status(200))}
	rt := NewTransport(base, WithIdempotencyKey(IdempotencyGenerator(func() (string, error) { return "", errors.New("no entropy") })))
	req, _ := http.NewRequest("POST", "http://api.example/", nil)
	_, err := rt.RoundTrip(req)
	assert.ErrorContains(t, err, "no entropy")
	// 255 bytes is fine.
	assert.NoError(t, validKey(strings.Repeat("k", 255)))
}

func TestWithHeaderCopies(t *testing.T) {
	h := http.Header{"A": {"1", "2"}, "B": {"3"}}
	out := withHeader(h, "Idempotency-Key", "k")
	assert.Equal(t, http.Header{"A": {"1", "2"}, "B": {"3"}}, h)
	assert.Equal(t, http.Header{"A": {"1", "2"}, "B": {"3"}, "Idempotency-Key": {"k"}}, out)
	out["A"] = append(out["A"], "x") // capacity is clipped: no write into B's values
	assert.Equal(t, []string{"3"}, out["B"])
}
