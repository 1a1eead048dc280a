package resilient

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// errHedgeLost is the error reported to observers for an attempt that was
// cancelled because another attempt of the same call answered first. The
// breaker does not judge it.
var errHedgeLost = errors.New("resilient: cancelled, another attempt answered first")

// reasonHedge is the Reason of a hedge's [Event].
const reasonHedge = "hedge"

// maxRoundBuffer bounds the reports of a round's attempts that are
// buffered.
const maxRoundBuffer = 16

// hedgeable reports whether req's round may send hedges at all: hedging is
// on, hedges and attempts are left, the request is idempotent and not an
// upgrade, and its body can be produced more than once.
func (t *callTransport) hedgeable(req *http.Request, rp *replay, n, hedges int) bool {
	return t.hedge != nil && hedges < t.hedge.p.MaxHedges && n+1 < t.retry.MaxAttempts &&
		isIdempotent(req, t.idemHeader) && req.Header.Get("Upgrade") == "" &&
		retryableURL(req) && (rp.getBody != nil || rp.rec != nil && rp.ok() || req.Body == nil || req.Body == http.NoBody)
}

// attemptOutcome is what one attempt came to.
type attemptOutcome struct {
	n            int           // the attempt's number
	req          *http.Request // the attempt's request
	resp         *http.Response
	err          error
	began, ended time.Time
	reason       string // "hedge" for a hedge
	cancel       context.CancelCauseFunc
	unsent       bool   // a hedge the limiter or the gate refused
	took         uint64 // the request of the host's quota it took (gate.look)
	panicked     any    // what its goroutine panicked with, if it did
}

// round sends areq and, while no answer worth keeping has come, hedges
// after the policy's delay. It returns the outcome that decides the call
// (the first answer not worth a retry, else the last answer, a response
// rather than an error), the number of attempts it sent, and the updated
// count of attempts numbered and hedges sent. Every other attempt has been
// cancelled, drained, closed, observed and waited for. took is the request
// of the host's quota that areq took (gate.look).
//
// A 409 Conflict to a hedge of a request with an idempotency key, while an
// earlier attempt is in flight, is the server saying that the earlier one
// is still being processed (Stripe, the IETF Idempotency-Key draft): it is
// held like an answer worth a retry, and does not end the round; once no
// earlier attempt is in flight it is an answer like any other, unless the
// earlier attempt failed in a way worth a retry and attempts are left: the
// retry then asks the server for the first attempt's stored answer.
func (t *callTransport) round(req, areq *http.Request, rp *replay, obs *observer, now, end time.Time, took uint64, n, hedges *int) (attemptOutcome, int) {
	// Room for every attempt this round may send, so that none blocks on
	// its report; bounded, since MaxHedges and MaxAttempts may be huge (a
	// report then waits for the loop below, which takes them all).
	results := make(chan attemptOutcome, 1+min(t.hedge.p.MaxHedges-*hedges, t.retry.MaxAttempts-*n-1, maxRoundBuffer))
	var (
		inflight []*attemptOutcome
		sent     int
	)
	launch := func(r *http.Request, reason string, began time.Time, took uint64) {
		*n++
		ctx, cancel := context.WithCancelCause(req.Context())
		o := &attemptOutcome{n: *n, req: r.WithContext(ctx), reason: reason, cancel: cancel, began: began, took: took}
		inflight = append(inflight, o)
		go func(o attemptOutcome) {
			defer func() {
				if p := recover(); p != nil { // the caller's goroutine panics instead
					o.panicked = p
					results <- o
				}
			}()
			if o.reason == reasonHedge {
				if o.took, o.err = t.admitHedge(req, o.req, end); o.err != nil {
					closeBody(o.req)
					o.ended, o.unsent = time.Now(), true
					results <- o
					return
				}
				o.began = time.Now()
			}
			o.resp, o.err = t.send(o.req, end, o.began, o.reason == reasonHedge)
			o.ended = time.Now()
			t.gate.observe(req, o.resp)
			results <- o
		}(*o)
	}
	delay, lat, ok := t.hedge.delay(req)
	if now.IsZero() { // no clock read yet: no timeout nor observer
		now = time.Now()
	}
	launch(areq, "", now, took)
	timer := time.NewTimer(delay)
	if !ok {
		timer.Stop()
	}
	defer timer.Stop()

	var kept *attemptOutcome
	for len(inflight) > 0 {
		select {
		case o := <-results:
			inflight = remove(inflight, o.n)
			if o.panicked != nil {
				repanic(o, inflight, results, kept)
			}
			if notSent(o.err) || o.unsent {
				if o.reason == reasonHedge {
					t.budget.refund()
				}
				t.gate.refund(req, o.took)
				if len(inflight) > 0 || kept != nil {
					obs.attempt(req, o.n, t.retry.MaxAttempts, o.began, o.ended, nil, o.err, 0, "", o.reason)
					o.cancel(errHedgeLost)
					continue
				}
				o.cancel(nil)
				return o, sent
			}
			sent++
			if lat != nil && o.resp != nil {
				lat.record(o.ended.Sub(o.began)) // answers only: a refused connection is no latency
			}
			if !t.shouldRetry(req, o.req, o.resp, o.err) && !t.stillRunning(req, o, inflight, kept, *n) {
				sent += t.cancelLosers(req, obs, inflight, results)
				if kept != nil {
					t.discard(req, obs, end, kept)
				}
				return t.keep(o), sent
			}
			if kept != nil && t.replaces(req, o, kept, *n) {
				t.discard(req, obs, end, kept)
				kept = nil
			}
			if kept == nil {
				if len(inflight) > 0 {
					o = hold(req, end, o)
				}
				kept = &o
			} else {
				t.discard(req, obs, end, &o)
			}
		case <-timer.C:
			if *hedges >= t.hedge.p.MaxHedges || *n >= t.retry.MaxAttempts || !t.mayHedge(req) {
				continue
			}
			hreq, ok := rp.parallel()
			if !ok {
				if rp.ok() {
					timer.Reset(delay) // the body is not recorded whole yet
				}
				continue
			}
			if !t.budget.withdraw() {
				closeBody(hreq)
				obs.budgetExhausted(req, *n, t.retry.MaxAttempts)
				continue
			}
			*hedges++
			launch(hreq, reasonHedge, time.Now(), 0)
			timer.Reset(delay)
		}
	}
	if kept == nil { // cannot happen: the first attempt always reports
		return attemptOutcome{err: ErrNilResponse}, sent
	}
	return t.keep(*kept), sent
}

// remove drops the attempt numbered n from the list.
func remove(list []*attemptOutcome, n int) []*attemptOutcome {
	for i, o := range list {
		if o.n == n {
			return append(list[:i], list[i+1:]...)
		}
	}
	return list
}

// keep hands back o as the round's outcome: its context lives on until
// its response body is closed, or ends now when it has no body.
func (t *callTransport) keep(o attemptOutcome) attemptOutcome {
	if o.resp == nil || o.resp.Body == http.NoBody {
		o.cancel(nil)
		return o
	}
	o.resp.Body = &cancelBody{ReadCloser: o.resp.Body, cancel: o.cancel}
	return o
}

// discard drains and closes an answer that lost, within the call's
// deadline end, and reports it.
func (t *callTransport) discard(req *http.Request, obs *observer, end time.Time, o *attemptOutcome) {
	if o.resp != nil {
		now := time.Now()
		closeKept(drain(o.req.Context(), o.resp, drainUntil(req, now, now, end)))
	}
	o.cancel(errHedgeLost)
	obs.attempt(req, o.n, t.retry.MaxAttempts, o.began, o.ended, o.resp, o.err, 0, "", o.reason)
}

// cancelLosers cancels the attempts in flight, waits for each, drains and
// closes what they return, reports them as lost, and returns how many of
// them had been sent.
func (t *callTransport) cancelLosers(req *http.Request, obs *observer, inflight []*attemptOutcome, results chan attemptOutcome) (sent int) {
	for _, o := range inflight {
		o.cancel(errHedgeLost)
	}
	for range inflight {
		o := <-results
		if notSent(o.err) || o.unsent {
			t.budget.refund()
			t.gate.refund(req, o.took)
			continue
		}
		sent++
		if o.resp != nil {
			now := time.Now()
			closeKept(drain(o.req.Context(), o.resp, now.Add(drainGrace)))
		}
		// Its latency is not recorded: a cancelled attempt only gives a
		// lower bound, and counting slow attempts at the hedge delay would
		// drag the percentile down to it, round after round.
		obs.attempt(req, o.n, t.retry.MaxAttempts, o.began, o.ended, nil, errHedgeLost, 0, "", o.reason)
	}
	return sent
}
