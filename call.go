package resilient

import (
	"errors"
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
}

// callOptions are the knobs of the call layer; see newCall.
type callOptions struct {
	retry          *RetryPolicy
	attempt, total time.Duration
	open           func(*http.Request) bool
	obs            *observer
}

// newCall returns the call layer over next, or next itself when it has
// nothing to do. A nil retry means a single attempt; a zero timeout leaves
// that bound out.
func newCall(next http.RoundTripper, o callOptions) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	t := &callTransport{wrapped: wrapped{next}, open: o.open, obs: o.obs}
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
	p := t.retry
	areq, rp, err := newReplay(req, p.MaxBufferedBody)
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	t.budget.call()
	var bo backoff.BackOff
	for attempt, sent := 1, began; ; attempt, sent = attempt+1, time.Now() {
		resp, err := t.send(areq, end, sent)
		ended := obs.now()
		if attempt > 1 && errors.Is(err, ErrCircuitOpen) {
			t.budget.refund() // refused, never sent
		}
		wait, why := t.decide(req, &rp, attempt, end, resp, err, &bo)
		if why != "" && !t.budget.withdraw() {
			wait, why = 0, ""
			obs.budgetExhausted(req, attempt, p.MaxAttempts)
		}
		var next *http.Request
		if why != "" {
			var rerr error
			if next, rerr = rp.attempt(); rerr != nil {
				wait, why = 0, ""
				t.budget.refund() // no retry after all
				if err != nil {
					err = joinErr(err, rerr)
				}
			}
		}
		obs.attempt(req, attempt, p.MaxAttempts, sent, ended, resp, err, wait, why)
		if why == "" {
			resp, err = done(attempt, resp, err)
			obs.done(req, attempt, p.MaxAttempts, began, ended, resp, err)
			return resp, err
		}
		drain(resp)
		if serr := sleep(ctx, wait); serr != nil {
			closeBody(next)
			err = &RetryError{Attempts: attempt, Err: joinErr(serr, err)}
			obs.done(req, attempt, p.MaxAttempts, began, obs.now(), nil, err)
			return nil, err
		}
		areq = next
	}
}

// decide returns how long to wait before another attempt and why
// ("backoff" or "retry-after"), or an empty why when the call ends here.
func (t *callTransport) decide(req *http.Request, rp *replay, attempt int, end time.Time, resp *http.Response, err error, bo *backoff.BackOff) (time.Duration, string) {
	p := t.retry
	if attempt >= p.MaxAttempts || !rp.ok || !t.shouldRetry(req, resp, err) {
		return 0, ""
	}
	wait, why := p.wait(attempt, resp, bo)
	if why == "" || !fits(req.Context(), end, wait) || (t.open != nil && t.open(req)) {
		return 0, ""
	}
	return wait, why
}

// send makes one attempt, started at now, under the earlier of the
// attempt's deadline and end.
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
