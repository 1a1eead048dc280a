package resilienttest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rt "github.com/resilient-go/resilient/resilienttest"
)

// TestInMemoryRequest checks that the handler sees the request as
// net/http's server would give it.
func TestInMemoryRequest(t *testing.T) {
	var seen *http.Request
	var body string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		b, _ := io.ReadAll(r.Body)
		body = string(b)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, `{"id":"ch_1"}`)
		w.Header().Set("X-Late", "ignored") // after WriteHeader, as net/http
	})
	reqBody := &trackedBody{Reader: strings.NewReader("amount=42")}
	req := mustRequest(t, http.MethodPost, "https://api.test:8443/v1/charges?x=1", reqBody)
	req.Header.Set("Idempotency-Key", "k1")

	resp, err := rt.InMemory(h).RoundTrip(req)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)

	assert.Equal(t, "/v1/charges?x=1", seen.RequestURI)
	assert.Equal(t, "/v1/charges", seen.URL.Path)
	assert.Equal(t, "x=1", seen.URL.RawQuery)
	assert.Empty(t, seen.URL.Host, "a server's URL has no host")
	assert.Equal(t, "api.test:8443", seen.Host)
	assert.NotEmpty(t, seen.RemoteAddr)
	assert.NotNil(t, seen.TLS, "https")
	assert.Equal(t, "k1", seen.Header.Get("Idempotency-Key"))
	assert.Equal(t, "amount=42", body)
	assert.True(t, reqBody.closed.Load())

	assert.Equal(t, "201 Created", resp.Status)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Empty(t, resp.Header.Get("X-Late"))
	assert.Equal(t, `{"id":"ch_1"}`, string(got))
	assert.Equal(t, int64(len(got)), resp.ContentLength)
	assert.Same(t, req, resp.Request)
}

func TestInMemoryResponses(t *testing.T) {
	tests := []struct {
		name     string
		h        http.HandlerFunc
		method   string
		status   int
		wantBody string
		wantCL   int64
		readErr  error
		err      error
	}{
		{name: "nothing written", h: func(http.ResponseWriter, *http.Request) {}, status: 200, wantCL: 0},
		{name: "informational then final", h: func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusAccepted)
		}, status: 202},
		{name: "body shorter than Content-Length", h: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "abc")
		}, status: 200, wantBody: "abc", wantCL: 10, readErr: io.ErrUnexpectedEOF},
		{name: "body longer than Content-Length", h: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "abc")
		}, status: 200, wantBody: "ab", wantCL: 2},
		{name: "abort before writing", h: func(http.ResponseWriter, *http.Request) {
			panic(http.ErrAbortHandler)
		}, err: syscall.ECONNRESET},
		{name: "abort after writing", h: func(w http.ResponseWriter, _ *http.Request) {
			io.WriteString(w, "par")
			panic(http.ErrAbortHandler)
		}, status: 200, wantBody: "par", wantCL: -1, readErr: io.ErrUnexpectedEOF},
		{name: "HEAD", method: http.MethodHead, h: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}, status: 200, wantCL: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			resp, err := rt.InMemory(tt.h).RoundTrip(mustRequest(t, method, "http://api.test/", nil))
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.Nil(t, resp)
				return
			}
			require.NoError(t, err)
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, tt.wantBody, string(got))
			assert.Equal(t, tt.wantCL, resp.ContentLength)
			if tt.readErr != nil {
				assert.ErrorIs(t, rerr, tt.readErr)
			} else {
				assert.NoError(t, rerr)
			}
		})
	}
}

func TestInMemoryContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A handler that ignores the context and answers late: the
		// client has given up by then.
		late := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			time.Sleep(2 * time.Second)
			io.WriteString(w, "too late")
		})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/", nil)
		_, err := rt.InMemory(late).RoundTrip(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)

		// A request whose context has ended is not served.
		served := false
		body := &trackedBody{Reader: strings.NewReader("x")}
		req, _ = http.NewRequestWithContext(ctx, http.MethodPost, "http://api.test/", body)
		_, err = rt.InMemory(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served = true })).RoundTrip(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.False(t, served)
		assert.True(t, body.closed.Load())
	})
}

func TestInMemoryOtherPanics(t *testing.T) {
	boom := http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })
	assert.PanicsWithValue(t, "boom", func() {
		_, _ = rt.InMemory(boom).RoundTrip(mustRequest(t, http.MethodGet, "http://api.test/", nil))
	})
}

func TestInMemoryNoURL(t *testing.T) {
	_, err := rt.InMemory(nil).RoundTrip(&http.Request{Method: http.MethodGet})
	assert.Error(t, err)
}
