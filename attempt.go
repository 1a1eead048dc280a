package resilient

// The pieces of the call loop (call.go) that decide one attempt: whether to
// send it, how to send it, what its outcome means, and how long to wait.

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// stopped is the outcome of a call whose next attempt was not sent (refused
// by the breaker, no time left, the body could not be produced again, the
// caller gave up): the last response when it was kept whole and the caller
// still waits for it, else an error that wraps why the call stopped and the
// last attempt's error.
func stopped(req *http.Request, sent int, kept *http.Response, last, why error) (*http.Response, error) {
	if kept != nil && !canceled(req) {
		return kept, nil
	}
	if kept != nil {
		kept.Body.Close()
	}
	return nil, &RetryError{Attempts: sent, Err: joinErr(why, last)}
}

// notSent reports the errors of an attempt that never left the process:
// refused by the circuit breaker or the bulkhead, or no time left for it.
func notSent(err error) bool {
	return err != nil && (errors.Is(err, ErrCircuitOpen) || errors.Is(err, errNoTimeLeft) || errors.Is(err, ErrInvalidRequest) ||
		errors.Is(err, ErrBulkheadFull))
}

// decide returns how long to wait before another attempt and why
// ("backoff" or "retry-after"), or an empty why when the call ends here.
func (t *callTransport) decide(req, areq *http.Request, rp *replay, attempt, round int, end time.Time, resp *http.Response, err error, bo *backoff.BackOff) (time.Duration, string) {
	p := t.retry
	if attempt >= p.MaxAttempts || !t.shouldRetry(req, areq, resp, err) || !rp.ok() {
		return 0, ""
	}
	wait, why := p.wait(round, resp, bo)
	if why == "" || !fits(req.Context(), end, wait) || (t.open != nil && t.open(req)) {
		return 0, ""
	}
	return wait, why
}

// send makes one attempt, started at now, under the earlier of the
// attempt's deadline and end. An attempt whose deadline has passed already
// is not sent. With a bulkhead it first takes a slot of the host, waiting
// for one unless it is a hedge; the attempt's clock starts after a wait.
func (t *callTransport) send(req *http.Request, end, now time.Time, hedge bool) (*http.Response, error) {
	if t.bulkhead == nil {
		return t.sendNow(req, end, now)
	}
	h, waited, err := t.bulkhead.acquire(req, end, !hedge)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if waited || now.IsZero() {
		now = time.Now()
	}
	held := false
	defer func() {
		if !held { // the base panicked: the slot must not be lost with it
			h.release()
		}
	}()
	resp, err := t.sendNow(req, end, now)
	held = true
	return h.hold(req, now, resp, err)
}

// sendNow makes one attempt, as send says, once it may go.
func (t *callTransport) sendNow(req *http.Request, end, now time.Time) (*http.Response, error) {
	at, cause := end, t.total
	if t.attempt != nil {
		if a := now.Add(t.attempt.after); at.IsZero() || a.Before(at) {
			at, cause = a, t.attempt
		}
	}
	if cause == nil {
		resp, err := normalize(t.next.RoundTrip(req))
		return resp, invalid(req, err)
	}
	if !now.Before(at) {
		closeBody(req)
		return nil, &TimeoutError{Scope: cause.scope, After: cause.after, Err: errNoTimeLeft}
	}
	resp, err := roundTripBefore(t.next, req, at, cause)
	return resp, invalid(req, err)
}

// invalid marks the error of an attempt with ErrInvalidRequest when req
// could not be sent as it is, so the transport refused it before using a
// connection: such an attempt was not sent, and is not retried. Validation
// runs on errors only, so a call that succeeds pays nothing for it.
func invalid(req *http.Request, err error) error {
	if err != nil && !errors.Is(err, ErrInvalidRequest) {
		if v := validRequest(req); v != nil {
			return fmt.Errorf("%w (%w)", v, quote(err))
		}
	}
	return err
}

// done is the outcome of a call: the response as it is, or the error wrapped.
func done(attempts int, resp *http.Response, err error) (*http.Response, error) {
	if err != nil {
		return nil, &RetryError{Attempts: attempts, Err: err}
	}
	return resp, nil
}

// shouldRetry applies the rules that RetryIf cannot change. req is the
// caller's request, areq the attempt's.
func (t *callTransport) shouldRetry(req, areq *http.Request, resp *http.Response, err error) bool {
	if canceled(req) || !retryableURL(req) || (err != nil && local(areq, err)) || !t.retry.RetryIf(resp, err) {
		return false
	}
	return isIdempotent(req, t.idemHeader) || neverProcessed(resp, err)
}

// wait returns how long to wait before the next attempt and why; why is
// empty when the call should end now (Retry-After too long, or the BackOff
// said Stop).
func (p *RetryPolicy) wait(attempt int, resp *http.Response, bo *backoff.BackOff) (time.Duration, string) {
	if resp != nil {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			if d > p.MaxRetryAfter {
				return 0, ""
			}
			return d, "retry-after"
		}
	}
	if p.Backoff == nil {
		return p.delay(attempt), "backoff"
	}
	if *bo == nil {
		if *bo = p.Backoff(); *bo == nil {
			return 0, ""
		}
	}
	if d := (*bo).NextBackOff(); d != backoff.Stop && d >= 0 {
		return d, "backoff"
	}
	return 0, ""
}
