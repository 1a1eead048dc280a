package main

import (
	"fmt"
	"io"
	"net/http"
	"time"
)

// tracer is an ordinary RoundTripper placed under the resilient layers, so
// it sees every attempt: composing with other RoundTrippers is just wrapping.
type tracer struct {
	next    http.RoundTripper
	out     io.Writer
	start   time.Time
	attempt int
}

func (t *tracer) RoundTrip(req *http.Request) (*http.Response, error) {
	t.attempt++
	at := time.Since(t.start).Round(10 * time.Millisecond)
	resp, err := t.next.RoundTrip(req)
	key := ""
	if k := req.Header.Get("Idempotency-Key"); k != "" {
		key = " key=" + k
	}
	switch {
	case err != nil:
		fmt.Fprintf(t.out, "  %7v  attempt %d: %s %s%s → error: %v\n", at, t.attempt, req.Method, req.URL.Path, key, err)
	default:
		fmt.Fprintf(t.out, "  %7v  attempt %d: %s %s%s → %s\n", at, t.attempt, req.Method, req.URL.Path, key, resp.Status)
	}
	return resp, err
}

// reset starts a new scenario.
func (t *tracer) reset() {
	t.start = time.Now()
	t.attempt = 0
}

// CloseIdleConnections forwards to the wrapped transport, as every
// RoundTripper that wraps another should.
func (t *tracer) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
