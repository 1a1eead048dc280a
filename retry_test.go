package resilient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	errRefused = &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	errReset   = &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	errNoHost  = &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "nope.invalid", IsNotFound: true}}
	errDNSTemp = &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "server misbehaving", Name: "x.example", IsTemporary: true}}
	errCert    = &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}
	errHost    = x509.HostnameError{Host: "a.example"}
	// errH2 stands for the HTTP/2 REFUSED_STREAM and GOAWAY errors, whose
	// types net/http does not export: unknown transport errors are retried.
	errH2 = errors.New("http2: server sent GOAWAY and closed the connection")
)

// TestRetrySemantics checks which outcomes are retried, method by method.
func TestRetrySemantics(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		header   string // an Idempotency-Key, if any
		steps    []func(*http.Request) (*http.Response, error)
		want     int // attempts made
		status   int // final status, 0 if an error is expected
		errIs    error
		errCheck func(error) bool
	}{
		{"503 then 200", "GET", "", steps(status(503), status(200)), 2, 200, nil, nil},
		{"408 retried", "GET", "", steps(status(408), status(200)), 2, 200, nil, nil},
		{"429 retried", "GET", "", steps(status(429), status(200)), 2, 200, nil, nil},
		{"500 retried", "GET", "", steps(status(500), status(200)), 2, 200, nil, nil},
		{"502 retried", "GET", "", steps(status(502), status(200)), 2, 200, nil, nil},
		{"504 retried", "GET", "", steps(status(504), status(200)), 2, 200, nil, nil},
		{"400 never", "GET", "", steps(status(400)), 1, 400, nil, nil},
		{"401 never", "GET", "", steps(status(401)), 1, 401, nil, nil},
		{"404 never", "GET", "", steps(status(404)), 1, 404, nil, nil},
		{"409 never", "GET", "", steps(status(409)), 1, 409, nil, nil},
		{"501 never", "GET", "", steps(status(501)), 1, 501, nil, nil},
		{"505 never", "GET", "", steps(status(505)), 1, 505, nil, nil},
		{"200 once", "GET", "", steps(status(200)), 1, 200, nil, nil},
		{"exhausted on status returns last", "GET", "", steps(status(503)), 3, 503, nil, nil},
		{"refused retried", "GET", "", steps(fail(errRefused), status(200)), 2, 200, nil, nil},
		{"reset retried", "GET", "", steps(fail(errReset), status(200)), 2, 200, nil, nil},
		{"EOF retried", "GET", "", steps(fail(io.EOF), status(200)), 2, 200, nil, nil},
		{"unexpected EOF retried", "GET", "", steps(fail(io.ErrUnexpectedEOF), status(200)), 2, 200, nil, nil},
		{"http2 GOAWAY retried", "GET", "", steps(fail(errH2), status(200)), 2, 200, nil, nil},
		{"temporary DNS retried", "GET", "", steps(fail(errDNSTemp), status(200)), 2, 200, nil, nil},
		{"exhausted on errors", "GET", "", steps(fail(errRefused)), 3, 0, syscall.ECONNREFUSED, nil},
		{"unknown host never", "GET", "", steps(fail(errNoHost)), 1, 0, nil, isDNS},
		{"cert error never", "GET", "", steps(fail(errCert)), 1, 0, nil, isCert},
		{"hostname error never", "GET", "", steps(fail(errHost)), 1, 0, nil, isHostname},
		{"PUT retried", "PUT", "", steps(status(503), status(200)), 2, 200, nil, nil},
		{"DELETE retried", "DELETE", "", steps(fail(errReset), status(200)), 2, 200, nil, nil},
		{"HEAD retried", "HEAD", "", steps(status(502), status(200)), 2, 200, nil, nil},
		{"OPTIONS retried", "OPTIONS", "", steps(status(502), status(200)), 2, 200, nil, nil},
		{"POST 503 not retried", "POST", "", steps(status(503), status(200)), 1, 503, nil, nil},
		{"POST reset not retried", "POST", "", steps(fail(errReset), status(200)), 1, 0, syscall.ECONNRESET, nil},
		{"POST refused retried", "POST", "", steps(fail(errRefused), status(200)), 2, 200, nil, nil},
		{"POST 429 retried", "POST", "", steps(status(429), status(200)), 2, 200, nil, nil},
		{"POST with key 503 retried", "POST", "k-1", steps(status(503), status(200)), 2, 200, nil, nil},
		{"POST with key reset retried", "POST", "k-1", steps(fail(errReset), status(200)), 2, 200, nil, nil},
		{"PATCH 500 not retried", "PATCH", "", steps(status(500), status(200)), 1, 500, nil, nil},
		{"PATCH with key retried", "PATCH", "k-2", steps(status(500), status(200)), 2, 200, nil, nil},
		{"caller deadline never", "GET", "", steps(fail(context.DeadlineExceeded)), 1, 0, context.DeadlineExceeded, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &script{steps: tt.steps}
				c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{}))}
				req, _ := http.NewRequest(tt.method, "http://api.example/v1/x", strings.NewReader("payload"))
				if tt.header != "" {
					req.Header.Set("Idempotency-Key", tt.header)
				}
				resp, err := c.Do(req)
				assert.Equal(t, tt.want, base.attempts(), "attempts")
				if tt.status != 0 {
					require.NoError(t, err)
					assert.Equal(t, tt.status, resp.StatusCode)
					body, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					assert.Equal(t, http.StatusText(tt.status), string(body), "final body intact")
					return
				}
				require.Error(t, err)
				assert.Nil(t, resp)
				var re *RetryError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, tt.want, re.Attempts)
				if tt.errIs != nil {
					assert.ErrorIs(t, err, tt.errIs)
				}
				if tt.errCheck != nil {
					assert.True(t, tt.errCheck(err), "error %v", err)
				}
			})
		})
	}
}

func isDNS(err error) bool {
	var d *net.DNSError
	return errors.As(err, &d) && d.IsNotFound
}

func isCert(err error) bool {
	var c *tls.CertificateVerificationError
	return errors.As(err, &c)
}

func isHostname(err error) bool {
	var h x509.HostnameError
	return errors.As(err, &h)
}

// TestRetryDrainsAndClosesRetriedBodies checks that every response that is
// not handed back is closed, and the one handed back is not.
func TestRetryDrainsAndClosesRetriedBodies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503), status(502), status(200))}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{}))}
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		require.Len(t, base.bodies, 3)
		assert.True(t, base.bodies[0].closed.Load())
		assert.True(t, base.bodies[1].closed.Load())
		assert.False(t, base.bodies[2].closed.Load())
		resp.Body.Close()
	})
}

// TestRetryBackoffSchedule checks the waits without jitter: 100 ms, 200 ms,
// 400 ms, capped by MaxDelay.
func TestRetryBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503))}
		p := RetryPolicy{MaxAttempts: 5, Jitter: JitterNone, MaxDelay: 300 * time.Millisecond}
		c := &http.Client{Transport: NewTransport(base, WithRetry(p))}
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		resp.Body.Close()
		require.Len(t, base.calls, 5)
		var gaps []time.Duration
		for i := 1; i < len(base.calls); i++ {
			gaps = append(gaps, base.calls[i].at.Sub(base.calls[i-1].at))
		}
		assert.Equal(t, []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 300 * time.Millisecond}, gaps)
	})
}

// TestRetryJitterBounds checks that each jittered delay stays within its bounds.
func TestRetryJitterBounds(t *testing.T) {
	for _, j := range []Jitter{JitterFull, JitterEqual} {
		p := RetryPolicy{Jitter: j}.normalized()
		for n := 1; n <= 10; n++ {
			ceil := min(time.Duration(float64(p.InitialDelay)*pow(2, n-1)), p.MaxDelay)
			floor := time.Duration(0)
			if j == JitterEqual {
				floor = ceil / 2
			}
			for range 100 {
				d := p.delay(n)
				assert.GreaterOrEqual(t, d, floor)
				assert.LessOrEqual(t, d, ceil)
			}
		}
	}
}

func pow(b float64, e int) float64 {
	r := 1.0
	for range e {
		r *= b
	}
	return r
}

// TestRetryAfter checks that the server's wait is honoured, and that one
// too long for MaxRetryAfter or for the deadline hands the response back at once.
func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name     string
		header   string
		deadline time.Duration // 0: none
		wantWait time.Duration
		attempts int
		status   int
	}{
		{"seconds", "3", 0, 3 * time.Second, 2, 200},
		{"http-date", "", 0, 5 * time.Second, 2, 200}, // set below from the bubble's clock
		{"past date retries at once", "Thu, 01 Jan 1998 00:00:00 GMT", 0, 0, 2, 200},
		{"malformed uses backoff", "soon", 0, 100 * time.Millisecond, 2, 200},
		{"longer than MaxRetryAfter", "3600", 0, 0, 1, 503},
		{"huge", "99999999999999999999999", 0, 0, 1, 503},
		{"beyond the deadline", "20", 10 * time.Second, 0, 1, 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := tt.header
				if h == "" {
					h = time.Now().Add(5 * time.Second).UTC().Format(http.TimeFormat)
				}
				base := &script{steps: steps(status(503, "Retry-After", h), status(200))}
				c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{Jitter: JitterNone}))}
				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tt.deadline)
					defer cancel()
				}
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.example/", nil)
				resp, err := c.Do(req)
				require.NoError(t, err)
				defer resp.Body.Close()
				assert.Equal(t, tt.status, resp.StatusCode)
				assert.Equal(t, tt.attempts, base.attempts())
				assert.Equal(t, tt.wantWait, time.Since(start))
				if tt.status == 503 {
					b, _ := io.ReadAll(resp.Body)
					assert.Equal(t, "Service Unavailable", string(b), "handed back whole")
				}
			})
		})
	}
}

// TestRetryCancelDuringWait checks that cancelling during a backoff wait
// returns at once with context.Canceled.
func TestRetryCancelDuringWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(503))}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{InitialDelay: time.Hour, MaxDelay: time.Hour, Jitter: JitterNone}))}
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.example/", nil)
		start := time.Now()
		resp, err := c.Do(req)
		assert.Nil(t, resp)
		assert.ErrorIs(t, err, context.Canceled)
		assert.Equal(t, time.Second, time.Since(start))
		assert.Equal(t, 1, base.attempts())
		require.Len(t, base.bodies, 1)
		assert.True(t, base.bodies[0].closed.Load())
	})
}

// TestRetryWaitNotStartedPastDeadline checks that a backoff wait that would
// end after the deadline is not started: the last outcome comes back at once.
func TestRetryWaitNotStartedPastDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(fail(errReset))}
		c := &http.Client{Transport: NewTransport(base, WithRetry(RetryPolicy{InitialDelay: 10 * time.Second, Jitter: JitterNone}))}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://api.example/", nil)
		start := time.Now()
		_, err := c.Do(req)
		assert.ErrorIs(t, err, syscall.ECONNRESET)
		assert.Equal(t, time.Duration(0), time.Since(start))
		assert.Equal(t, 1, base.attempts())
	})
}

// TestRetryNotForBadURL checks that requests that can never succeed are not
// repeated.
func TestRetryNotForBadURL(t *testing.T) {
	for _, tt := range []struct {
		url      string
		attempts int // a URL with no host is refused before sending
	}{{"ftp://api.example/x", 1}, {"http:///nohost", 1}} {
		t.Run(tt.url, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := &script{steps: steps(fail(errors.New("unsupported")))}
				rt := NewTransport(base, WithRetry(RetryPolicy{}))
				req, _ := http.NewRequest("GET", tt.url, nil)
				_, err := rt.RoundTrip(req)
				assert.Error(t, err)
				assert.Equal(t, tt.attempts, base.attempts())
			})
		})
	}
}

// TestRetryIfOverride checks a custom classifier, composed with the default.
func TestRetryIfOverride(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(status(409), status(503), status(200))}
		p := RetryPolicy{RetryIf: func(resp *http.Response, err error) bool {
			return resp != nil && resp.StatusCode == http.StatusConflict || IsRetryable(resp, err)
		}}
		c := &http.Client{Transport: NewTransport(base, WithRetry(p))}
		resp, err := c.Get("http://api.example/")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, 3, base.attempts())
	})
}

// TestRetryOutOfRangePolicy checks that negative values mean the defaults.
func TestRetryOutOfRangePolicy(t *testing.T) {
	p := RetryPolicy{MaxAttempts: -4, InitialDelay: -time.Second, MaxDelay: -1, MaxRetryAfter: -1, Multiplier: -3, MaxBufferedBody: -1}.normalized()
	assert.Equal(t, DefaultMaxAttempts, p.MaxAttempts)
	assert.Equal(t, DefaultInitialDelay, p.InitialDelay)
	assert.Equal(t, DefaultMaxDelay, p.MaxDelay)
	assert.Equal(t, DefaultMaxRetryAfter, p.MaxRetryAfter)
	assert.Equal(t, DefaultMultiplier, p.Multiplier)
	assert.Equal(t, int64(DefaultMaxBufferedBody), p.MaxBufferedBody)
	q := RetryPolicy{InitialDelay: time.Minute, MaxDelay: time.Second}.normalized()
	assert.Equal(t, time.Minute, q.MaxDelay, "MaxDelay is never below InitialDelay")
}

// TestStalledDrainBoundedWithoutTimeouts: with WithRetry alone, a 503 whose
// body never ends is closed when the wait is over, and the retry goes out.
func TestStalledDrainBoundedWithoutTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := &script{steps: steps(dripping(503, "", 1, time.Hour), status(200))}
		rt := NewTransport(base, WithRetry(RetryPolicy{Jitter: JitterNone}))
		req, _ := http.NewRequest("GET", "http://api.example/", nil)
		start := time.Now()
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, 200, resp.StatusCode)
		assert.Equal(t, DefaultInitialDelay, time.Since(start))
		synctest.Wait()
	})
}

// TestTLSAlertNotRetried: a server that refuses the client's TLS version
// ("remote error: tls: protocol version not supported") is asked once.
func TestTLSAlertNotRetried(t *testing.T) {
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13}
	srv.StartTLS()
	defer srv.Close()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig.MaxVersion = tls.VersionTLS12
	defer tr.CloseIdleConnections()
	var attempts atomic.Int32
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) { attempts.Add(1); return tr.RoundTrip(r) })
	rt := NewTransport(base, WithRetry(RetryPolicy{}))
	req, _ := http.NewRequest("GET", srv.URL, nil)
	_, err := rt.RoundTrip(req)
	require.ErrorContains(t, err, "remote error")
	assert.Equal(t, int32(1), attempts.Load())
}

// TestDelayExtremePolicies checks that no policy, however extreme, gives a
// delay outside [0, MaxDelay]: no overflow into a negative wait.
func TestDelayExtremePolicies(t *testing.T) {
	multipliers := []float64{1000, 1e300, math.MaxFloat64, math.Inf(1), math.Inf(-1), math.NaN(), 1, 1.0000001, 0, -5}
	for _, tt := range []struct {
		name           string
		initial, limit time.Duration
	}{
		{"max delay MaxInt64", 0, math.MaxInt64},
		{"both MaxInt64", math.MaxInt64, math.MaxInt64},
		{"initial 1ns", 1, math.MaxInt64},
		{"initial near max", math.MaxInt64 / 3, math.MaxInt64},
		{"defaults", 0, 0},
		{"negative", -1, -1},
		{"1 s cap", time.Minute, time.Second},
	} {
		for _, m := range multipliers {
			for _, j := range []Jitter{JitterFull, JitterEqual, JitterNone, Jitter(-1), Jitter(42)} {
				p := RetryPolicy{InitialDelay: tt.initial, MaxDelay: tt.limit, Multiplier: m, Jitter: j}.normalized()
				for _, n := range []int{-1, 0, 1, 2, 3, 10, 62, 63, 64, 100, 1 << 20, math.MaxInt} {
					d := p.delay(n)
					if d < 0 || d > p.MaxDelay {
						t.Fatalf("%s, multiplier %v, jitter %d, retry %d: delay %v outside [0, %v]", tt.name, m, j, n, d, p.MaxDelay)
					}
				}
			}
		}
	}
}

// TestDelayMultiplierNormalized checks that a multiplier that cannot grow a
// delay means the default, and that JitterNone reaches the cap exactly.
func TestDelayMultiplierNormalized(t *testing.T) {
	for _, m := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 1, 0.5, -2} {
		assert.Equal(t, DefaultMultiplier, RetryPolicy{Multiplier: m}.normalized().Multiplier, m)
	}
	p := RetryPolicy{MaxDelay: math.MaxInt64, Multiplier: 1000, Jitter: JitterNone}.normalized()
	assert.Equal(t, 100*time.Millisecond, p.delay(1))
	assert.Equal(t, 100*time.Second, p.delay(2))
	assert.Equal(t, time.Duration(math.MaxInt64), p.delay(50))
	q := RetryPolicy{InitialDelay: time.Second, MaxDelay: 5 * time.Second, Multiplier: 3, Jitter: JitterNone}.normalized()
	assert.Equal(t, []time.Duration{time.Second, 3 * time.Second, 5 * time.Second, 5 * time.Second},
		[]time.Duration{q.delay(1), q.delay(2), q.delay(3), q.delay(4)})
}

// FuzzDelay checks the delay bounds over arbitrary policies.
func FuzzDelay(f *testing.F) {
	f.Add(int64(0), int64(math.MaxInt64), 1000.0, 0, 5)
	f.Add(int64(1), int64(1), math.NaN(), 1, 1)
	f.Add(int64(math.MaxInt64), int64(0), math.Inf(1), 2, math.MaxInt)
	f.Add(int64(-1), int64(-1), -1.0, 3, -1)
	f.Fuzz(func(t *testing.T, initial, limit int64, m float64, jitter, n int) {
		p := RetryPolicy{InitialDelay: time.Duration(initial), MaxDelay: time.Duration(limit), Multiplier: m, Jitter: Jitter(jitter)}.normalized()
		d := p.delay(n)
		if d < 0 || d > p.MaxDelay {
			t.Fatalf("delay %v outside [0, %v] for %+v, retry %d", d, p.MaxDelay, p, n)
		}
		if p.Jitter == JitterNone && n >= 1 && d < min(p.InitialDelay, p.MaxDelay) {
			t.Fatalf("delay %v below the initial delay %v", d, p.InitialDelay)
		}
	})
}
