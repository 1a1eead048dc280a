package resilient

import (
	"math"
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
	gate       *gate     // the per-host throttle gate; nil without retries
	limiter    Limiter   // nil: none
	hedge      *hedging  // nil: no hedging
	bulkhead   *bulkhead // nil: no concurrency limit (bulkhead.go)
	chained    bool      // made by a Middleware: a link of the caller's chain (requestpolicy.go)
}

// callOptions are the knobs of the call layer; see newCall.
type callOptions struct {
	retry          *RetryPolicy
	attempt, total time.Duration
	open           func(*http.Request) bool
	obs            *observer
	idemHeader     string
	limiter        Limiter
	hedge          *HedgePolicy
	// keys names the host of a request for the gate and the hedge delays:
	// the breaker's own set when there is one; nil means the default key.
	keys *breakerSet
	// closed reports whether the breaker of a request is closed.
	closed func(*http.Request) bool
	// bulkhead and adaptive configure the concurrency limit; nil: none.
	bulkhead *ConcurrencyPolicy
	adaptive *AdaptivePolicy
	// chained marks a layer made by a Middleware, one link of a chain.
	chained bool
}

// newCall returns the call layer over next, or next itself when it has
// nothing to do. A nil retry means a single attempt; a zero timeout leaves
// that bound out.
func newCall(next http.RoundTripper, o callOptions) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	t := &callTransport{wrapped: wrapped{next}, open: o.open, obs: o.obs, idemHeader: o.idemHeader, limiter: o.limiter, chained: o.chained}
	if o.retry == nil && o.hedge != nil {
		o.retry = &RetryPolicy{MaxAttempts: 1 + min(o.hedge.normalized().MaxHedges, math.MaxInt-1)}
	}
	if o.retry != nil {
		p := o.retry.normalized()
		t.retry = &p
		t.budget = newBudget(p.Budget)
		keys, max := o.keys, DefaultMaxBreakers
		if keys == nil {
			keys = newBreakerSet(BreakerPolicy{}.normalized(), nil)
		}
		if keys.p.MaxBreakers > 0 {
			max = keys.p.MaxBreakers
		}
		t.gate = newGate(keys, max)
		keys.gate = t.gate // the breaker's judge asks it (throttle.go)
		if o.hedge != nil {
			t.hedge = newHedging(*o.hedge, keys, max, o.closed)
		}
	}
	if o.bulkhead != nil || o.adaptive != nil {
		t.bulkhead = newConcurrency(o.keys, o.bulkhead, o.adaptive)
	}
	if o.attempt > 0 {
		t.attempt = &deadlineCause{ScopeAttempt, o.attempt}
	}
	if o.total > 0 {
		t.total = &deadlineCause{ScopeTotal, o.total}
	}
	if t.retry == nil && t.attempt == nil && t.total == nil && t.obs == nil && t.limiter == nil && t.bulkhead == nil {
		return next
	}
	return t
}

// RoundTrip implements http.RoundTripper.
func (t *callTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if p := policyOf(req); p != nil { // the request's own knobs (requestpolicy.go)
		o, err := t.override(p)
		if err != nil {
			closeBody(req)
			return nil, err
		}
		t = o
	}
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
		if t.limiter != nil {
			if err := t.limit(req, end); err != nil {
				closeBody(req)
				err = &RetryError{Err: err}
				obs.done(req, 0, 1, began, obs.now(), nil, err)
				return nil, err
			}
			began = time.Now()
		}
		resp, err := t.send(req, end, began, false)
		ended := obs.now()
		obs.attempt(req, 1, 1, began, ended, resp, err, 0, "", "")
		obs.done(req, 1, 1, began, ended, resp, err)
		return resp, err
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
		bo     backoff.BackOff
		n      int            // attempts numbered so far, hedges included
		round  int            // rounds: an attempt and its hedges
		hedges int            // hedges sent
		sent   int            // attempts that were sent
		kept   *http.Response // the last response, drained whole, in case no attempt follows
		last   error          // the last attempt's error
	)
	for now := began; ; now = time.Now() {
		took, err := t.admit(req, end, &now)
		if err != nil {
			closeBody(areq)
			if round > 0 {
				t.budget.refund() // the retry was never sent
			}
			resp, err := stopped(req, sent, kept, last, err)
			obs.done(req, sent, p.MaxAttempts, began, obs.now(), resp, err)
			return resp, err
		}
		round++
		var o attemptOutcome
		k := 1
		if t.hedgeable(req, &rp, n, hedges) {
			o, k = t.round(req, areq, &rp, obs, now, end, took, &n, &hedges)
		} else {
			n++
			o = attemptOutcome{n: n, req: areq, began: now}
			o.resp, o.err = t.send(areq, end, now, false)
			o.ended = obs.now()
			if notSent(o.err) {
				t.gate.refund(req, took)
			}
			t.gate.observe(req, o.resp)
		}
		resp, err := o.resp, o.err
		if notSent(err) {
			if round > 1 {
				t.budget.refund() // refused, never sent
			}
			obs.attempt(req, o.n, p.MaxAttempts, o.began, o.ended, nil, err, 0, "", o.reason)
			resp, err = stopped(req, sent, kept, last, err)
			obs.done(req, sent, p.MaxAttempts, began, obs.now(), resp, err)
			return resp, err
		}
		closeKept(kept) // another attempt was sent: the last one is not handed back
		sent, kept, last = sent+k, nil, err
		wait, why := t.decide(req, o.req, &rp, n, round, end, resp, err, &bo)
		if why != "" && !t.budget.withdraw() {
			wait, why = 0, ""
			obs.budgetExhausted(req, o.n, p.MaxAttempts)
		}
		obs.attempt(req, o.n, p.MaxAttempts, o.began, o.ended, resp, err, wait, why, o.reason)
		if why == "" {
			resp, err = done(sent, resp, err)
			obs.done(req, sent, p.MaxAttempts, began, obs.now(), resp, err)
			return resp, err
		}
		now = time.Now()
		until := now.Add(wait)
		kept = drain(ctx, resp, drainUntil(req, now, until, end))
		if t.bulkhead != nil && resp != nil {
			freeSlot(resp.Body) // drained or kept open, it is no attempt in flight: the retry may need the slot
		}
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
