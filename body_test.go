package resilient

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// onlyReader hides every method but Read, so http.NewRequest cannot set GetBody.
type onlyReader struct{ io.Reader }

// closeCounter records Close calls on a request body.
type closeCounter struct {
	io.Reader
	closes int
}

func (c *closeCounter) Close() error { c.closes++; return nil }

// TestRetryReplaysBodies checks that every attempt sends the whole body,
// whatever kind of body the caller gave.
func TestRetryReplaysBodies(t *testing.T) {
	payload := strings.Repeat("0123456789", 100)
	tests := []struct {
		name     string
		body     func() io.Reader
		limit    int64
		attempts int
	}{
		{"GetBody from strings.Reader", func() io.Reader { return strings.NewReader(payload) }, 0, 3},
		{"GetBody from bytes.Buffer", func() io.Reader { return bytes.NewBufferString(payload) }, 0, 3},
		{"no GetBody, buffered", func() io.Reader { return onlyReader{strings.NewReader(payload)} }, 0, 3},
		{"no GetBody, exactly the limit", func() io.Reader { return onlyReader{strings.NewReader(payload)} }, int64(len(payload)), 3},
		{"no GetBody, over the limit: sent once", func() io.Reader { return onlyReader{strings.NewReader(payload)} }, int64(len(payload) - 1), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &script{steps: steps(status(503))}
				c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{MaxBufferedBody: tt.limit}))}
				req, _ := http.NewRequest("PUT", "http://api.example/doc", tt.body())
				resp, err := c.Do(req)
				require.NoError(t, err)
				resp.Body.Close()
				require.Equal(t, tt.attempts, base.attempts())
				for i, call := range base.calls {
					assert.Equal(t, payload, call.body, "attempt %d body", i+1)
				}
			})
		})
	}
}

// TestRetryClosesCallerBody checks that the caller's body is closed exactly
// as the base transport would close it, including when it was buffered.
func TestRetryClosesCallerBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503), status(200))}
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		body := &closeCounter{Reader: strings.NewReader("abc")}
		req, _ := http.NewRequest("PUT", "http://api.example/doc", body)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 2, base.attempts())
		assert.GreaterOrEqual(t, body.closes, 1)
		assert.Equal(t, []string{"abc", "abc"}, []string{base.calls[0].body, base.calls[1].body})
	})
}

// failingReader fails after some bytes.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	f.n--
	p[0] = 'x'
	return 1, nil
}

// TestRetryUnreadableBody checks that a body that fails while it is sent
// ends the call with that error: it is the caller's, so it is not retried
// and the breaker does not hold it against the host.
func TestRetryUnreadableBody(t *testing.T) {
	for range 2 { // a breaker of one failure would open on the first
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			defer r.Body.Close()
			if _, err := io.ReadAll(r.Body); err != nil {
				return nil, err // as http.Transport reports a failing body
			}
			return reply(r, 200, "ok"), nil
		})
		var attempts atomic.Int32
		counted := roundTripFunc(func(r *http.Request) (*http.Response, error) { attempts.Add(1); return base(r) })
		rt := NewTransport(counted, WithRetry(RetryPolicy{}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1}))
		body := &closeCounter{Reader: &failingReader{n: 3}}
		req, _ := http.NewRequest("PUT", "http://api.example/doc", body)
		resp, err := rt.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorContains(t, err, "disk on fire")
		assert.NotErrorIs(t, err, ErrCircuitOpen)
		assert.Equal(t, int32(1), attempts.Load())
		assert.Equal(t, 1, body.closes)
	}
}

// TestRetryGetBodyFails checks that a retry whose body cannot be produced
// again is not sent empty: the last outcome is returned.
func TestRetryGetBodyFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(fail(errReset), status(200))}
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		req, _ := http.NewRequest("PUT", "http://api.example/doc", strings.NewReader("abc"))
		req.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
		resp, err := rt.RoundTrip(req)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, ErrBodyNotReplayable)
		assert.ErrorContains(t, err, "connection reset")
		assert.Equal(t, 1, base.attempts())
	})
}
