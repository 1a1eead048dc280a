package resilient

import (
	"errors"
	"fmt"
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
	open   func(req *http.Request) bool
	obs    *observer
	budget *budget // nil: no budget
	// idemHeader is the idempotency header configured by WithIdempotencyKey,
	// which makes a request retryable like Idempotency-Key does.
	idemHeader string
}

// callOptions are the knobs of the call layer; see newCall.
type callOptions struct {
	retry          *RetryPolicy
	attempt, total time.Duration
	open           func(*http.Request) bool
	obs            *observer
	idemHeader     string
}

// newCall returns the call layer over next, or next itself when it has
// nothing to do. A nil retry means a single attempt; a zero timeout leaves
// that bound out.
func newCall(next http.RoundTripper, o callOptions) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	t := &callTransport{wrapped: wrapped{next}, open: o.open, obs: o.obs, idemHeader: o.idemHeader}
	if o.retry != nil {
		p := o.retry.normalized()
		t.retry = &p
		t.budget = newBudget(p.Budget)
	}
	if o.attempt > 0 {
		t.attempt = &deadlineCause{ScopeAttempt, o.attempt}
	}
	if o.total > 0 {
		t.total = &deadlineCause{ScopeTotal, o.total}
	}
	if t.retry == nil && t.attempt == nil && t.total == nil && t.obs == nil {
		return next
	}
	return t
}

// RoundTrip implements http.RoundTripper.
func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	obs := t.obs.forCall(req.Context())
	var began time.Time // read once, for the deadlines and the observers
	if t.total != nil || t.attempt != nil || obs != nil {
		began = time.Now()
	}
	var end time.Time // the total timeout's deadline, zero if none
	if t.total != nil {
		end = began.Add(t.total.after)
	}
	if t.retry == nil {
		resp, err := t.send(req, end, began)
		ended := obs.now()
		obs.attempt(req, 1, 1, began, ended, resp, err, 0, "")
		obs.done(req, 1, 1, began, ended, resp, err)
		return resp, err
	}
	if err := validRequest(req); err != nil {
		closeBody(req)
		obs.done(req, 0, t.retry.MaxAttempts, began, obs.now(), nil, err)
		return nil, err
	}
	return t.loop(req, obs, began, end)
}

// loop is the retry loop of one call.
func (t *callTransport) loop(req *http.Request, obs *observer, began, end time.Time) (*http.Response, error) {
	p := t.retry
	areq, rp := newReplay(req, p.MaxBufferedBody)
	defer rp.finish()
	ctx := req.Context()
	t.budget.call()
	var (
		bo   backoff.BackOff
		sent int            // attempts that were sent
		kept *http.Response // the last response, drained whole, in case no attempt follows
		last error          // the last attempt's error
	)
	for attempt, now := 1, began; ; attempt, now = attempt+1, time.Now() {
		resp, err := t.send(areq, end, now)
		ended := obs.now()
		if notSent(err) {
			if attempt > 1 {
				t.budget.refund() // refused, never sent
			}
			obs.attempt(req, attempt, p.MaxAttempts, now, ended, nil, err, 0, "")
			resp, err = stopped(req, sent, kept, last, err)
			obs.done(req, sent, p.MaxAttempts, began, obs.now(), resp, err)
			return resp, err
		}
		sent, kept, last = sent+1, nil, err
		wait, why := t.decide(req, areq, &rp, attempt, end, resp, err, &bo)
		if why != "" && !t.budget.withdraw() {
			wait, why = 0, ""
			obs.budgetExhausted(req, attempt, p.MaxAttempts)
		}
		obs.attempt(req, attempt, p.MaxAttempts, now, ended, resp, err, wait, why)
		if why == "" {
			resp, err = done(sent, resp, err)
			obs.done(req, sent, p.MaxAttempts, began, obs.now(), resp, err)
			return resp, err
		}
		now = time.Now()
		until := now.Add(wait)
		kept = drain(ctx, resp, drainUntil(req, now, until, end))
		var next *http.Request
		serr := waitUntil(req, until)
		if serr == nil {
			if next, serr = rp.attempt(ctx); serr != nil {
				t.budget.refund() // no retry after all
			}
		}
		if serr != nil {
			resp, err = stopped(req, sent, kept, last, serr)
			obs.done(req, sent, p.MaxAttempts, began, obs.now(), resp, err)
			return resp, err
		}
		areq = next
	}
}

// drainGrace is the least time a response body gets to be drained before
// a retry that waits less than that, so that its connection can be reused.
const drainGrace = 10 * time.Millisecond

// drainUntil is how long the previous response may be drained: during the
// wait, and at least drainGrace, but never past the call's deadlines.
func drainUntil(req *http.Request, now, until, end time.Time) time.Time {
	if g := now.Add(drainGrace); until.Before(g) {
		until = g
	}
	if !end.IsZero() && end.Before(until) {
		until = end
	}
	if dl, ok := req.Context().Deadline(); ok && dl.Before(until) {
		until = dl
	}
	return until
}

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

// waitUntil waits until the given time, or until the request's context
// ends or its Cancel channel closes, whichever comes first.
func waitUntil(req *http.Request, until time.Time) error {
	ctx := req.Context()
	d := time.Until(until)
	if d <= 0 {
		if canceled(req) {
			return fmt.Errorf("resilient: waiting to retry: %w", cancelErr(req))
		}
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
	case <-req.Cancel: //lint:ignore SA1019 callers that still set it are honoured
	}
	return fmt.Errorf("resilient: waiting %v before retrying: %w", d.Round(time.Millisecond), cancelErr(req))
}

// notSent reports the errors of an attempt that never left the process:
// refused by the circuit breaker, or no time left for it.
func notSent(err error) bool {
	return err != nil && (errors.Is(err, ErrCircuitOpen) || errors.Is(err, errNoTimeLeft))
}

// decide returns how long to wait before another attempt and why
// ("backoff" or "retry-after"), or an empty why when the call ends here.
func (t *callTransport) decide(req, areq *http.Request, rp *replay, attempt int, end time.Time, resp *http.Response, err error, bo *backoff.BackOff) (time.Duration, string) {
	p := t.retry
	if attempt >= p.MaxAttempts || !t.shouldRetry(req, areq, resp, err) || !rp.ok() {
		return 0, ""
	}
	wait, why := p.wait(attempt, resp, bo)
	if why == "" || !fits(req.Context(), end, wait) || (t.open != nil && t.open(req)) {
		return 0, ""
	}
	return wait, why
}

// send makes one attempt, started at now, under the earlier of the
// attempt's deadline and end. An attempt whose deadline has passed already
// is not sent.
func (t *callTransport) send(req *http.Request, end, now time.Time) (*http.Response, error) {
	at, cause := end, t.total
	if t.attempt != nil {
		if a := now.Add(t.attempt.after); at.IsZero() || a.Before(at) {
			at, cause = a, t.attempt
		}
	}
	if cause == nil {
		return normalize(t.next.RoundTrip(req))
	}
	if !now.Before(at) {
		closeBody(req)
		return nil, &TimeoutError{Scope: cause.scope, After: cause.after, Err: errNoTimeLeft}
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

// normalize enforces "a response or an error": a response that comes with
// an error is closed, a nil response with a nil error becomes an error (as
// net/http's Client does), and a nil Body an empty one.
func normalize(resp *http.Response, err error) (*http.Response, error) {
	switch {
	case err != nil && resp != nil:
		if resp.Body != nil {
			resp.Body.Close()
		}
		return nil, err
	case err == nil && resp == nil:
		return nil, ErrNilResponse
	case err == nil && resp.Body == nil:
		resp.Body = http.NoBody
	}
	return resp, err
}
