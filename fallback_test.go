package resilient

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFallbackServesADeadHostOnOnePath(t *testing.T) {
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "down")
	}))
	defer down.Close()
	gone := httptest.NewServer(http.NotFoundHandler())
	goneURL := gone.URL
	gone.Close() // connections refused from here on

	canned := CannedResponse(http.StatusOK, http.Header{"Content-Type": {"application/json"}}, []byte(`{"rates":[]}`))
	retry := WithRetry(RetryPolicy{MaxAttempts: 2, InitialDelay: time.Millisecond, MaxDelay: time.Millisecond})
	on5xx := WithFallbackOn(func(r *http.Response) bool { return r.StatusCode >= 500 })
	tests := []struct {
		name       string
		url        string
		opts       []Option
		wantStatus int
		wantBody   string
		wantErr    bool
	}{
		{"503 with WithFallbackOn: the fallback", down.URL, []Option{retry, WithFallback(canned), on5xx}, 200, `{"rates":[]}`, false},
		{"refused with WithFallbackOn: the fallback", goneURL, []Option{retry, WithFallback(canned), on5xx}, 200, `{"rates":[]}`, false},
		{"503 without WithFallbackOn: the response", down.URL, []Option{retry, WithFallback(canned)}, 503, "down", false},
		{"refused without WithFallbackOn: the fallback", goneURL, []Option{retry, WithFallback(canned)}, 200, `{"rates":[]}`, false},
		{"WithFallbackOn without WithFallback does nothing", down.URL, []Option{retry, on5xx}, 503, "down", false},
		{"a predicate that does not pick it", down.URL, []Option{retry, WithFallback(canned),
			WithFallbackOn(func(r *http.Response) bool { return r.StatusCode == 429 })}, 503, "down", false},
		{"a fallback that declines keeps the response readable", down.URL, []Option{retry, on5xx,
			WithFallback(func(*http.Request, error) (*http.Response, error) { return nil, nil })}, 503, "down", false},
		{"a fallback may turn the response into an error", down.URL, []Option{retry, on5xx,
			WithFallback(func(_ *http.Request, err error) (*http.Response, error) { return nil, err })}, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &http.Client{Transport: NewTransport(nil, tt.opts...)}
			defer c.CloseIdleConnections()
			resp, err := c.Get(tt.url)
			if tt.wantErr {
				var se *StatusError
				require.ErrorAs(t, err, &se)
				assert.Equal(t, 503, se.StatusCode)
				assert.Equal(t, "resilient: the host answered 503 Service Unavailable", se.Error())
				return
			}
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, tt.wantBody, string(body))
		})
	}
}

func TestFallbackOnResponseClosesTheReplacedBody(t *testing.T) {
	var got *StatusError
	var served *http.Response
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		served = reply(r, 503, "down", "Retry-After", "7")
		return served, nil
	})
	c := &http.Client{Transport: NewTransport(base, WithFallbackOn(func(r *http.Response) bool { return r.StatusCode == 503 }),
		WithFallback(func(req *http.Request, err error) (*http.Response, error) {
			require.True(t, errors.As(err, &got))
			return CannedResponse(200, nil, []byte("cached"))(req, err)
		}))}
	resp, err := c.Get("http://api.test/rates")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.True(t, served.Body.(*trackedBody).closed.Load(), "the replaced response is closed")
	assert.Equal(t, "7", got.Header.Get("Retry-After"), "the fallback sees the status and the header")
	assert.Equal(t, 503, got.StatusCode)
	assert.Equal(t, "http://api.test/rates", resp.Request.URL.String())
}

func TestCannedResponse(t *testing.T) {
	h := http.Header{"X-Source": {"cache"}}
	body := []byte("default")
	f := CannedResponse(999, h, body)
	h.Set("X-Source", "changed")
	body[0] = 'X'
	req, _ := http.NewRequest(http.MethodGet, "http://api.test/", nil)
	for range 2 {
		resp, err := f(req, nil)
		require.NoError(t, err)
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, "default", string(got), "a fresh body each time, a copy of the caller's")
		assert.Equal(t, http.StatusOK, resp.StatusCode, "an invalid status means 200")
		assert.Equal(t, "200 OK", resp.Status)
		assert.Equal(t, "cache", resp.Header.Get("X-Source"), "a copy of the caller's header")
		assert.EqualValues(t, 7, resp.ContentLength)
		assert.Same(t, req, resp.Request)
		resp.Header.Set("X-Source", "mutated")
	}
}
