package resilienttest_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rt "github.com/resilient-go/resilient/resilienttest"
)

func mustRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	require.NoError(t, err)
	return req
}

// outcome sends one GET through f and names what came back: the status
// code, "reset", or "error".
func outcome(t *testing.T, f http.RoundTripper) string {
	t.Helper()
	resp, err := f.RoundTrip(mustRequest(t, http.MethodGet, "http://api.test/", nil))
	switch {
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case err != nil:
		return "error: " + err.Error()
	}
	resp.Body.Close()
	return resp.Status[:3]
}

func outcomes(t *testing.T, f http.RoundTripper, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = outcome(t, f)
	}
	return out
}

func TestPlans(t *testing.T) {
	tests := []struct {
		name   string
		faults *rt.Faults
		want   []string
	}{
		{"script then pass", rt.Script(rt.Status(503), rt.Reset(), rt.Status(429), rt.Pass(), rt.Status(500)),
			[]string{"503", "reset", "429", "200", "500", "200", "200"}},
		{"empty script", rt.Script(), []string{"200", "200"}},
		{"zero Faults", &rt.Faults{}, []string{"200", "200"}},
		{"always", rt.Always(rt.Status(502)), []string{"502", "502", "502"}},
		{"rate of nothing", rt.Rate(1), []string{"200", "200"}},
		{"rate above 1 means 1", rt.Rate(1, rt.Weighted(7, rt.Status(503))), []string{"503", "503", "503", "503"}},
		{"NaN and negative mean 0", rt.Rate(1, rt.Weighted(math.NaN(), rt.Status(503)), rt.Weighted(-1, rt.Reset())),
			[]string{"200", "200", "200", "200"}},
		{"status out of range means 500", rt.Always(rt.Status(42)), []string{"500"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, outcomes(t, tt.faults, len(tt.want)))
			assert.Equal(t, len(tt.want), tt.faults.Count())
		})
	}
}

func TestRate(t *testing.T) {
	plan := func(seed uint64) *rt.Faults {
		return rt.Rate(seed, rt.Weighted(0.3, rt.Status(503)), rt.Weighted(0.1, rt.Reset()))
	}
	const n = 2000
	a, b, c := outcomes(t, plan(42), n), outcomes(t, plan(42), n), outcomes(t, plan(43), n)
	assert.Equal(t, a, b, "the same seed gives the same faults")
	assert.NotEqual(t, a, c, "another seed gives other faults")

	counts := map[string]int{}
	for _, o := range a {
		counts[o]++
	}
	assert.InDelta(t, 0.3*n, counts["503"], 0.05*n)
	assert.InDelta(t, 0.1*n, counts["reset"], 0.05*n)
	assert.InDelta(t, 0.6*n, counts["200"], 0.05*n)
	assert.Len(t, counts, 3)

	// Probabilities adding up to more than 1 are scaled: no attempt passes.
	counts = map[string]int{}
	for _, o := range outcomes(t, rt.Rate(1, rt.Weighted(0.8, rt.Status(503)), rt.Weighted(0.8, rt.Status(429))), n) {
		counts[o]++
	}
	assert.Zero(t, counts["200"])
	assert.InDelta(t, n/2, counts["503"], 0.05*n)
}

// TestFaultsConcurrent hands a script's faults to concurrent requests:
// each fault is used exactly once.
func TestFaultsConcurrent(t *testing.T) {
	f := rt.Script(rt.Status(503), rt.Status(503), rt.Reset(), rt.Status(429))
	var wg sync.WaitGroup
	results := make([]string, 20)
	for i := range results {
		wg.Go(func() { results[i] = outcome(t, f) })
	}
	wg.Wait()
	counts := map[string]int{}
	for _, r := range results {
		counts[r]++
	}
	assert.Equal(t, map[string]int{"503": 2, "reset": 1, "429": 1, "200": 16}, counts)
	assert.Equal(t, 20, f.Count())
}

// trackedBody records whether it was closed.
type trackedBody struct {
	io.Reader
	closed atomic.Bool
}

func (b *trackedBody) Close() error { b.closed.Store(true); return nil }

// TestRoundTripContract checks the RoundTripper contract for every kind of
// fault: the caller's request is not changed, its body is closed, and a
// response comes XOR an error.
func TestRoundTripContract(t *testing.T) {
	faults := []rt.Fault{
		rt.Pass(), rt.Status(503, "Retry-After", "1"), rt.Status(204), rt.Reset(), rt.Stall(),
		rt.Latency(time.Hour), rt.Truncate(2), rt.Status(429).After(time.Hour), rt.LostResponse(), rt.BrokenResponse(),
	}
	for _, f := range faults {
		t.Run(f.String(), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				defer cancel()
				body := &trackedBody{Reader: strings.NewReader("payload")}
				req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://api.test/x?q=1", body)
				require.NoError(t, err)
				req.Header.Set("X-Test", "1")
				before := req.Clone(ctx)

				var rec rt.Recorder
				for _, transport := range []http.RoundTripper{rt.Always(f), rt.Always(f).Transport(&rec)} {
					body.closed.Store(false)
					body.Reader = strings.NewReader("payload")
					resp, err := transport.RoundTrip(req)
					assert.True(t, (resp == nil) != (err == nil), "a response XOR an error")
					if resp != nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						assert.NotNil(t, resp.Request)
					}
					assert.True(t, body.closed.Load(), "the request body is closed")
					assert.Equal(t, before.Header, req.Header)
					assert.Equal(t, before.URL, req.URL)
					assert.Same(t, body, req.Body)
				}
			})
		})
	}
}

func TestStatusResponse(t *testing.T) {
	resp, err := rt.Always(rt.Status(503, "Retry-After", "1", "X-A", "a", "X-A", "b", "Odd")).RoundTrip(
		mustRequest(t, http.MethodGet, "http://api.test/", nil))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "503 Service Unavailable", resp.Status)
	assert.Equal(t, "1", resp.Header.Get("Retry-After"))
	assert.Equal(t, []string{"a", "b"}, resp.Header.Values("X-A"))
	assert.Empty(t, resp.Header.Values("Odd"), "a name without a value is ignored")
	assert.Equal(t, "Service Unavailable\n", string(body))
	assert.Equal(t, int64(len(body)), resp.ContentLength)

	resp, err = rt.Always(rt.Status(503)).RoundTrip(mustRequest(t, http.MethodHead, "http://api.test/", nil))
	require.NoError(t, err)
	assert.Equal(t, http.NoBody, resp.Body)
}

// TestTruncate checks the truncated body over bodies of every length.
func TestTruncate(t *testing.T) {
	for _, tt := range []struct {
		body   string
		n      int64
		want   string
		wantCL int64
	}{
		{"hello world", 5, "hello", 11},
		{"hello", 5, "hello", 6},
		{"hi", 5, "hi", 3},
		{"", 0, "", 1},
		{"hello", -3, "", 5},
	} {
		api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, tt.body) })
		resp, err := rt.Always(rt.Truncate(tt.n)).Transport(rt.InMemory(api)).RoundTrip(
			mustRequest(t, http.MethodGet, "http://api.test/", nil))
		require.NoError(t, err)
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, tt.body)
		assert.Equal(t, tt.want, string(got))
		assert.Equal(t, tt.wantCL, resp.ContentLength, tt.body)
	}
}

func TestFaultString(t *testing.T) {
	tests := []struct {
		f    rt.Fault
		want string
	}{
		{rt.Pass(), "pass"},
		{rt.Fault{}, "pass"},
		{rt.Latency(200 * time.Millisecond), "latency 200ms"},
		{rt.Latency(-time.Second), "pass"},
		{rt.Status(503, "Retry-After", "1"), "503 Service Unavailable"},
		{rt.Reset().After(time.Second), "reset after 1s"},
		{rt.Stall(), "stall"},
		{rt.LostResponse(), "lost response"},
		{rt.BrokenResponse(), "broken response"},
		{rt.Truncate(10), "truncate at 10 bytes"},
		{rt.Latency(time.Second).After(time.Second), "latency 2s"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.f.String())
	}
}

// TestLostResponse checks that the server acts on a request whose answer
// is lost, on both sides.
func TestLostResponse(t *testing.T) {
	var served atomic.Int32
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served.Add(1)
		io.WriteString(w, "charged")
	})
	sides := map[string]http.RoundTripper{
		"client side": rt.Always(rt.LostResponse()).Transport(rt.InMemory(api)),
		"server side": rt.InMemory(rt.Always(rt.LostResponse()).Handler(api)),
	}
	for name, transport := range sides {
		served.Store(0)
		resp, err := transport.RoundTrip(mustRequest(t, http.MethodPost, "http://api.test/", strings.NewReader("x")))
		assert.Nil(t, resp, name)
		assert.ErrorIs(t, err, syscall.ECONNRESET, name)
		assert.Equal(t, int32(1), served.Load(), name)
	}
}
