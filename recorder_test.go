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
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAppendRecordedGrowth: the recording keeps every byte, takes a known
// ContentLength at once, and never grows past the limit.
func TestAppendRecordedGrowth(t *testing.T) {
	tests := []struct {
		name        string
		want, limit int64
		chunks      []int
		maxCap      int
	}{
		{"known length, one allocation", 10000, 1 << 20, []int{4096, 4096, 1808}, 10000},
		{"unknown length doubles", 0, 1 << 20, []int{8192, 8192, 8192, 8192}, 32768},
		{"limit caps growth", 0, 5000, []int{3000, 2000}, 5000},
		{"length over limit ignored", 1 << 30, 6000, []int{100}, 6000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf, all []byte
			caps := map[int]bool{}
			for i, n := range tt.chunks {
				p := bytes.Repeat([]byte{byte('a' + i)}, n)
				all = append(all, p...)
				buf = appendRecorded(buf, p, tt.want, tt.limit)
				caps[cap(buf)] = true
			}
			if !bytes.Equal(buf, all) {
				t.Fatal("the recording lost or changed bytes")
			}
			if cap(buf) > tt.maxCap {
				t.Fatalf("cap %d, want at most %d", cap(buf), tt.maxCap)
			}
			if tt.want > 0 && tt.want <= tt.limit && len(caps) != 1 {
				t.Fatalf("grew %d times with a known length", len(caps))
			}
		})
	}
}

// TestUploadRecordedWhileSent: a body without GetBody is replayed exactly
// on a retry, and one whose ContentLength exceeds MaxBufferedBody is sent
// once: its 503 is handed back.
func TestUploadRecordedWhileSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503), status(200))}
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		req, _ := http.NewRequest("PUT", "http://api.example/doc", onlyReader{strings.NewReader("hello")})
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		require.Equal(t, 2, base.attempts())
		assert.Equal(t, "hello", base.calls[0].body)
		assert.Equal(t, "hello", base.calls[1].body)

		base = &script{steps: steps(status(503), status(200))}
		rt = NewTransport(base, WithRetry(RetryPolicy{MaxBufferedBody: 4}))
		req, _ = http.NewRequest("PUT", "http://api.example/doc", onlyReader{strings.NewReader("hello")})
		req.ContentLength = 5
		resp, err = rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 503, resp.StatusCode, "too large to replay: sent once")
		assert.Equal(t, 1, base.attempts())
	})
}

// TestRetryWhenBaseNeverClosesBody: a base that neither reads nor closes
// the body of a failed attempt cannot hang the retry of a recorded body,
// and the retry still sends the whole body.
func TestRetryWhenBaseNeverClosesBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		var got string
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				buf := make([]byte, 3)
				io.ReadFull(r.Body, buf) // reads a part, never closes
				return reply(r, 503, ""), nil
			}
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			got = string(b)
			return reply(r, 200, ""), nil
		})
		rt := NewTransport(base, WithRetry(RetryPolicy{}))
		body := &closeCounter{Reader: strings.NewReader("hello world")}
		req, _ := http.NewRequest("PUT", "http://api.example/doc", body)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, "hello world", got)
		assert.Equal(t, 1, body.closes, "the caller's body is closed once the call is over")
	})
}

// eagerBase answers at once with status, while a goroutine of its own goes
// on reading (and then closes) the request body, as http.Transport's
// writeLoop does when a server answers before it has read the body.
func eagerBase(attempts *atomic.Int32, status int, kv ...string) roundTripFunc {
	return func(r *http.Request) (*http.Response, error) {
		attempts.Add(1)
		if r.Body != nil {
			go func() { _, _ = io.Copy(io.Discard, r.Body); r.Body.Close() }()
		}
		return reply(r, status, "busy", kv...), nil
	}
}

// TestRecorderReopenWaitBounded: the server answered 503 before the upload
// was done, and the caller's producer is slow. The retry waits for the
// transport's read of the caller's body under way (recorder.reopen), which
// is bounded only by the caller's context: not by the total timeout, and not
// at all with WithRetry alone, where net/http hands the 503 back at once.
func TestRecorderReopenWaitBounded(t *testing.T) {
	tests := []struct {
		name  string
		opts  []Option
		limit time.Duration // the call must end by then
	}{
		{"total timeout", []Option{WithTotalTimeout(time.Second)}, time.Second},
		{"retry alone", nil, time.Second}, // 1 s: generous; a drain is bounded by 10 ms
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var attempts atomic.Int32
				opts := append([]Option{WithRetry(RetryPolicy{InitialDelay: 10 * time.Millisecond, Jitter: JitterNone})}, tt.opts...)
				rt := NewTransport(eagerBase(&attempts, 503), opts...)
				pr, pw := io.Pipe()
				stalled := make(chan struct{})
				go func() {
					_, _ = pw.Write([]byte("first chunk"))
					<-stalled // the producer stalls until the test ends
					pw.Close()
				}()
				defer close(stalled)
				req, _ := http.NewRequest("PUT", "http://api.example/doc", pr)
				start := time.Now()
				resp, err := rt.RoundTrip(req)
				elapsed := time.Since(start)
				if resp != nil {
					resp.Body.Close()
				}
				assert.LessOrEqual(t, elapsed, tt.limit, "the call outlived its bound (err=%v)", err)
				if err == nil {
					assert.Equal(t, 503, resp.StatusCode)
				}
				pr.CloseWithError(errors.New("test over"))
			})
		})
	}
}
