package resilient

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

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
