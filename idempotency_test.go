package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
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

// TestCustomIdempotencyHeaderMakesPOSTRetryable: the header configured
// with IdempotencyHeader is what lets the retry layer repeat a POST.
func TestCustomIdempotencyHeaderMakesPOSTRetryable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var keys []string
		base := &script{steps: steps(func(r *http.Request) (*http.Response, error) {
			keys = append(keys, r.Header.Get("X-Request-Id"))
			return reply(r, 503, ""), nil
		}, func(r *http.Request) (*http.Response, error) {
			keys = append(keys, r.Header.Get("X-Request-Id"))
			return reply(r, 200, ""), nil
		})}
		rt := NewTransport(base, WithRetry(RetryPolicy{}), WithIdempotencyKey(IdempotencyHeader("X-Request-Id")))
		req, _ := http.NewRequest("POST", "http://api.example/charges", strings.NewReader("{}"))
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		require.Len(t, keys, 2)
		assert.NotEmpty(t, keys[0])
		assert.Equal(t, keys[0], keys[1])
	})
}

// TestIdempotencyKeyLayerNilNext checks that the layer on its own, given a
// nil next RoundTripper, sends through http.DefaultTransport like the other
// layers instead of panicking.
func TestIdempotencyKeyLayerNilNext(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Idempotency-Key")
	}))
	defer srv.Close()
	rt := IdempotencyKey()(nil)
	require.NotNil(t, rt)
	resp, err := (&http.Client{Transport: rt}).Post(srv.URL, "text/plain", strings.NewReader("x"))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Len(t, <-got, 36, "a generated UUID")
	rt.(interface{ CloseIdleConnections() }).CloseIdleConnections()
}

// keyRecorder is a server that redirects /start to /end with the given
// status and records the Idempotency-Key of every request.
type keyRecorder struct {
	mu   sync.Mutex
	keys map[string]string // path -> key
}

func (k *keyRecorder) server(t *testing.T, code int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		k.mu.Lock()
		k.keys[r.Method+" "+r.URL.Path] = r.Header.Get("Idempotency-Key")
		k.mu.Unlock()
		if r.URL.Path == "/start" {
			http.Redirect(w, r, "/end", code)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestIdempotencyContextKeyRidesRedirects documents the decision: a key set
// with ContextWithIdempotencyKey is sent on every hop of one call's
// redirects, since they are the same operation.
func TestIdempotencyContextKeyRidesRedirects(t *testing.T) {
	for _, tt := range []struct {
		code int
		want map[string]string
	}{
		{http.StatusTemporaryRedirect, map[string]string{"POST /start": "order-42", "POST /end": "order-42"}},
		{http.StatusPermanentRedirect, map[string]string{"POST /start": "order-42", "POST /end": "order-42"}},
		{http.StatusSeeOther, map[string]string{"POST /start": "order-42", "GET /end": "order-42"}},
	} {
		t.Run(http.StatusText(tt.code), func(t *testing.T) {
			rec := &keyRecorder{keys: map[string]string{}}
			srv := rec.server(t, tt.code)
			base := http.DefaultTransport.(*http.Transport).Clone()
			defer base.CloseIdleConnections()
			c := &http.Client{Transport: NewTransport(base, WithIdempotencyKey(), WithRetry(RetryPolicy{}))}
			ctx := ContextWithIdempotencyKey(context.Background(), "order-42")
			req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/start", strings.NewReader("charge"))
			resp, err := c.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			rec.mu.Lock()
			defer rec.mu.Unlock()
			assert.Equal(t, tt.want, rec.keys)
		})
	}
}

// TestIdempotencyContextKeyReusedAcrossCalls documents the pitfall: two
// calls made with the same context send the same key; a context derived
// per call sends its own.
func TestIdempotencyContextKeyReusedAcrossCalls(t *testing.T) {
	base := &script{steps: steps(status(200))}
	c := &http.Client{Transport: NewTransport(base, WithIdempotencyKey())}
	post := func(ctx context.Context) {
		req, _ := http.NewRequestWithContext(ctx, "POST", "http://api.example/charges", strings.NewReader("x"))
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	ctx := ContextWithIdempotencyKey(context.Background(), "order-42-charge")
	post(ctx)
	post(ctx)
	post(ContextWithIdempotencyKey(ctx, "order-43-charge"))
	require.Len(t, base.calls, 3)
	assert.Equal(t, []string{"order-42-charge", "order-42-charge", "order-43-charge"},
		[]string{base.calls[0].key, base.calls[1].key, base.calls[2].key})
}

// TestIdempotencyGeneratedKeyRidesRedirects checks that a generated key is
// kept across a 307 or 308 redirect of the same POST, and that the GET a
// 303 turns it into gets none.
func TestIdempotencyGeneratedKeyRidesRedirects(t *testing.T) {
	for _, code := range []int{http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusSeeOther} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			rec := &keyRecorder{keys: map[string]string{}}
			srv := rec.server(t, code)
			base := http.DefaultTransport.(*http.Transport).Clone()
			defer base.CloseIdleConnections()
			c := &http.Client{Transport: NewTransport(base, WithIdempotencyKey())}
			resp, err := c.Post(srv.URL+"/start", "text/plain", strings.NewReader("charge"))
			require.NoError(t, err)
			resp.Body.Close()
			rec.mu.Lock()
			defer rec.mu.Unlock()
			first := rec.keys["POST /start"]
			assert.Len(t, first, 36)
			if code == http.StatusSeeOther {
				assert.Equal(t, "", rec.keys["GET /end"])
				return
			}
			assert.Equal(t, first, rec.keys["POST /end"])
		})
	}
}

// TestIdempotencyEmptyKeyIsNoKey: an Idempotency-Key header whose value is
// empty or blank is no key: the server sees none and would process a second
// copy as a new request, so a POST carrying it is neither retried nor
// hedged (the same rule decides both). A real key is, and so is net/http's
// marker, an entry whose value is a nil slice (idempotent, header not
// sent).
func TestIdempotencyEmptyKeyIsNoKey(t *testing.T) {
	tests := []struct {
		name   string
		header http.Header
		sent   int32
	}{
		{"empty value", http.Header{"Idempotency-Key": {""}}, 1},
		{"blank value", http.Header{"Idempotency-Key": {"  "}}, 1},
		{"empty X-Idempotency-Key", http.Header{"X-Idempotency-Key": {""}}, 1},
		{"a key", http.Header{"Idempotency-Key": {"order-42"}}, 3},
		{"net/http's marker", http.Header{"Idempotency-Key": nil}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sent atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				sent.Add(1)
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusServiceUnavailable)
			}))
			defer srv.Close()
			// Without the idempotency layer, which refuses an empty key.
			c := newWireClient(t, WithRetry(RetryPolicy{MaxAttempts: 3}))
			req, err := http.NewRequest("POST", srv.URL, strings.NewReader("pay"))
			require.NoError(t, err)
			req.Header = tt.header
			resp, err := c.Do(req)
			require.NoError(t, err)
			readAll(t, resp)
			assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			assert.Equal(t, tt.sent, sent.Load())
		})
	}
}
