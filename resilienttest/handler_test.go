package resilienttest_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/resilient-go/resilient"
	rt "github.com/resilient-go/resilient/resilienttest"
)

// helloAPI answers "hello world".
var helloAPI = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("X-API", "hello")
	io.WriteString(w, "hello world")
})

// TestHandlerFaults serves each fault from an httptest server, over real
// sockets, to a plain net/http client that does not reuse connections (so
// that net/http does not resend anything by itself).
func TestHandlerFaults(t *testing.T) {
	tests := []struct {
		name     string
		fault    rt.Fault
		ttl      time.Duration // the client's deadline
		body     string        // the request body, POST when set
		status   int
		header   [2]string
		wantBody string
		readErr  error
		err      error
	}{
		{name: "pass", fault: rt.Pass(), status: 200, header: [2]string{"X-API", "hello"}, wantBody: "hello world"},
		{name: "status", fault: rt.Status(503, "Retry-After", "1"), status: 503,
			header: [2]string{"Retry-After", "1"}, wantBody: "Service Unavailable\n"},
		{name: "no content", fault: rt.Status(204), status: 204},
		{name: "reset", fault: rt.Reset(), body: "charge", err: syscall.ECONNRESET},
		{name: "lost response", fault: rt.LostResponse(), body: "charge", err: syscall.ECONNRESET},
		{name: "broken response", fault: rt.BrokenResponse(), body: "charge", err: io.ErrUnexpectedEOF},
		{name: "truncate", fault: rt.Truncate(5), status: 200, header: [2]string{"Content-Length", "11"},
			wantBody: "hello", readErr: io.ErrUnexpectedEOF},
		{name: "stall", fault: rt.Stall(), body: "charge", ttl: 50 * time.Millisecond, err: context.DeadlineExceeded},
		{name: "latency past the deadline", fault: rt.Latency(time.Hour), ttl: 50 * time.Millisecond, err: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(rt.Always(tt.fault).Handler(helloAPI))
			defer srv.Close()
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			defer client.CloseIdleConnections()

			ctx := t.Context()
			if tt.ttl > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ttl)
				defer cancel()
			}
			method, body := http.MethodGet, io.Reader(nil)
			if tt.body != "" {
				method, body = http.MethodPost, strings.NewReader(tt.body)
			}
			req, err := http.NewRequestWithContext(ctx, method, srv.URL, body)
			require.NoError(t, err)
			resp, err := client.Do(req)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			got, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tt.status, resp.StatusCode)
			if tt.header[0] != "" {
				assert.Equal(t, tt.header[1], resp.Header.Get(tt.header[0]))
			}
			assert.Equal(t, tt.wantBody, string(got))
			if tt.readErr != nil {
				assert.ErrorIs(t, rerr, tt.readErr)
			} else {
				assert.NoError(t, rerr)
			}
		})
	}
}

// TestHandlerWithResilientNew runs resilient.New(Recommended()) against a
// misbehaving httptest server. The reset may land on a reused connection,
// which net/http resends by itself (the GET is replayable): the faults then
// count an attempt that resilient never saw. Either way the call succeeds
// on the third request to reach the server.
func TestHandlerWithResilientNew(t *testing.T) {
	faults := rt.Script(rt.Status(503, "Retry-After", "0"), rt.Reset())
	var rec rt.Recorder
	srv := httptest.NewServer(faults.Handler(rec.Handler(helloAPI)))
	defer srv.Close()
	client := resilient.New(resilient.Recommended())
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL + "/greeting?lang=en")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, "hello world", string(body))
	assert.Equal(t, 3, faults.Count())

	attempts := rec.Attempts()
	require.Len(t, attempts, 1, "only the request that passed reached the recorder")
	assert.Equal(t, srv.URL+"/greeting?lang=en", attempts[0].URL.String())
}

// TestHandlerInMemory serves the handler middleware through InMemory,
// under synctest: latency and stalls take fake time, and a reset or a
// truncation aborts the in-memory connection as a server would.
func TestHandlerInMemory(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		faults := rt.Script(rt.Latency(3*time.Second), rt.Stall(), rt.Reset(), rt.Truncate(2), rt.Status(429))
		client := &http.Client{Transport: rt.InMemory(faults.Handler(helloAPI))}

		start := time.Now()
		resp, err := client.Get("http://api.test/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 3*time.Second, time.Since(start), "latency")

		ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://api.test/", nil)
		_, err = client.Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded, "stall")
		assert.Equal(t, 8*time.Second, time.Since(start))

		_, err = client.Get("http://api.test/")
		require.ErrorIs(t, err, syscall.ECONNRESET, "reset")

		resp, err = client.Get("http://api.test/")
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, "truncate")
		assert.Equal(t, "he", string(got))
		assert.Equal(t, int64(11), resp.ContentLength)

		resp, err = client.Get("http://api.test/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 429, resp.StatusCode)
	})
}

// TestBrokenResponseIsNeverResentByNetHTTP sends keyed POSTs over one
// reused keep-alive connection: net/http resends a replayable request that
// a Reset fails before any byte of the answer, but never one that
// BrokenResponse fails, so the handler counts exactly the attempts sent.
func TestBrokenResponseIsNeverResentByNetHTTP(t *testing.T) {
	tests := []struct {
		fault rt.Fault
		want  int // requests reaching the faults for the one failed attempt
	}{
		{rt.Reset(), 2},
		{rt.BrokenResponse(), 1},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			faults := rt.Script(rt.Pass(), tt.fault, rt.Pass())
			srv := httptest.NewServer(faults.Handler(helloAPI))
			defer srv.Close()
			client := srv.Client()
			defer client.CloseIdleConnections()
			post := func() error {
				req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("charge"))
				req.Header.Set("Idempotency-Key", "order-42")
				resp, err := client.Transport.RoundTrip(req)
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				return resp.Body.Close()
			}
			require.NoError(t, post(), "the first POST opens the connection that the second reuses")
			err := post()
			assert.Equal(t, 1+tt.want, faults.Count(), "requests that reached the server")
			if tt.want == 1 {
				require.ErrorIs(t, err, io.ErrUnexpectedEOF, "the attempt fails, and is not resent")
			} else {
				require.NoError(t, err, "net/http resent it on a new connection, where the plan's Pass answered")
			}
		})
	}
}
