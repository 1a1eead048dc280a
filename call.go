package resilient

import (
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// callTransport runs one call: the total timeout, the retry loop and the
// attempt timeout in a single layer. Each attempt runs under one context
// whose deadline is the earlier of the attempt's and the call's, so the
// recommended stack pays for one timer per attempt, not one per layer; the
// waits between attempts need no timer of the total timeout, since a wait
// that would end after it is never started.
type callTransport struct {
	wrapped
	retry   *RetryPolicy // nil: a single attempt
	attempt *deadlineCause
	total   *deadlineCause
	// open, when set, reports whether the circuit breaker below refuses
	// req now: the loop then ends without waiting for a refused attempt.
	open func(req *http.Request) bool
}

// newCall returns the call layer over next, or next itself when it has
// nothing to do. retry may be nil; a zero timeout leaves that bound out.
func newCall(next http.RoundTripper, retry *RetryPolicy, attempt, total time.Duration) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	t := &callTransport{wrapped: wrapped{next}}
	if retry != nil {
		p := retry.normalized()
		t.retry = &p
	}
	if attempt > 0 {
		t.attempt = &deadlineCause{ScopeAttempt, attempt}
	}
	if total > 0 {
		t.total = &deadlineCause{ScopeTotal, total}
	}
	if t.retry == nil && t.attempt == nil && t.total == nil {
		return next
	}
	return t
}

// RoundTrip implements http.RoundTripper.
func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var end time.Time // the total timeout's deadline, zero if none
	if t.total != nil {
		end = time.Now().Add(t.total.after)
	}
	if t.retry == nil {
		return t.send(req, end)
	}
	p := t.retry
	areq, rp, err := newReplay(req, p.MaxBufferedBody)
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	var bo backoff.BackOff
	for attempt := 1; ; attempt++ {
		resp, err := t.send(areq, end)
		if attempt >= p.MaxAttempts || !rp.ok || !t.shouldRetry(req, resp, err) {
			return done(attempt, resp, err)
		}
		wait, ok := p.wait(attempt, resp, &bo)
		if !ok || !fits(ctx, end, wait) || (t.open != nil && t.open(req)) {
			return done(attempt, resp, err)
		}
		next, rerr := rp.attempt()
		if rerr != nil {
			if err != nil {
				err = joinErr(err, rerr)
			}
			return done(attempt, resp, err)
		}
		drain(resp)
		if serr := sleep(ctx, wait); serr != nil {
			closeBody(next)
			return nil, &RetryError{Attempts: attempt, Err: joinErr(serr, err)}
		}
		areq = next
	}
}

// send makes one attempt, under the earlier of the attempt's deadline and
// end.
func (t *callTransport) send(req *http.Request, end time.Time) (*http.Response, error) {
	at, cause := end, t.total
	if t.attempt != nil {
		if a := time.Now().Add(t.attempt.after); at.IsZero() || a.Before(at) {
			at, cause = a, t.attempt
		}
	}
	if cause == nil {
		return normalize(t.next.RoundTrip(req))
	}
	return roundTripBefore(t.next, req, at, cause)
}

// done is the outcome of a call: the response as it is, or the error wrapped.
func done(attempts int, resp *http.Response, err error) (*http.Response, error) {
	if err != nil {
		return nil, &RetryError{Attempts: attempts, Err: err}
	}
	return resp, nil
}

// shouldRetry applies the rules that RetryIf cannot change.
func (t *callTransport) shouldRetry(req *http.Request, resp *http.Response, err error) bool {
	if req.Context().Err() != nil || !retryableURL(req) || !t.retry.RetryIf(resp, err) {
		return false
	}
	return isIdempotent(req) || neverProcessed(resp, err)
}

// wait returns how long to wait before the next attempt; ok is false when
// the call should end now (Retry-After too long, or the BackOff said Stop).
func (p *RetryPolicy) wait(attempt int, resp *http.Response, bo *backoff.BackOff) (d time.Duration, ok bool) {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return d, d <= p.MaxRetryAfter
		}
	}
	if p.Backoff == nil {
		return p.delay(attempt), true
	}
	if *bo == nil {
		*bo = p.Backoff()
		if *bo == nil {
			return 0, false
		}
	}
	d = (*bo).NextBackOff()
	return d, d != backoff.Stop && d >= 0
}

// normalize enforces "a response or an error": a response that comes with
// an error is closed.
func normalize(resp *http.Response, err error) (*http.Response, error) {
	if err != nil && resp != nil {
		if resp.Body != nil {
			resp.Body.Close()
		}
		resp = nil
	}
	return resp, err
}
