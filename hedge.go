package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Defaults of [HedgePolicy]; docs/design.md says why.
const (
	DefaultMaxHedges       = 1
	DefaultHedgePercentile = 0.95
	DefaultHedgeMinDelay   = 10 * time.Millisecond
)

// HedgePolicy configures hedged requests ([WithHedging]). The zero value is
// the default policy: one hedge, sent when the attempt is slower than 95 %
// of the host's recent attempts, and never sooner than 10 ms.
//
// The default delay is adaptive because a fixed one goes stale: set below
// a host's usual latency it doubles the load on it, set above its tail it
// never helps, and the right value differs per host and changes with the
// time of day. A percentile of the host's own recent latencies hedges about
// 1 − Percentile of its attempts by construction, whatever their scale;
// the floor keeps fast hosts from being hedged on scheduler noise. An
// adaptive delay sends no hedge to a host until it has seen 20 of its
// attempts.
type HedgePolicy struct {
	// Delay, when above zero, is a fixed delay: a hedge is sent when no
	// answer came that long after the last attempt was sent. Zero means
	// the adaptive delay below.
	Delay time.Duration
	// MaxHedges is how many hedges one call may send in all. Default 1.
	MaxHedges int
	// Percentile chooses the adaptive delay: the latency that this share of
	// the host's recent attempts did not exceed, over the last 128 to 256
	// that were answered (those cancelled because another attempt won are
	// not counted). Hosts are keyed like the breakers and as many are kept.
	// Default 0.95; values outside (0, 1) mean the default.
	Percentile float64
	// MinDelay is the floor of the adaptive delay. Default 10 ms.
	MinDelay time.Duration
}

// WithHedging sends hedged requests: when an idempotent request (by the
// same rule as retries: a safe method, or an idempotency key) has had no
// answer after the policy's delay, another attempt is sent in parallel, up
// to MaxHedges. The first answer that is not worth a retry wins; every
// other attempt is cancelled, its response body drained and closed, and no
// goroutine outlives the call. When every attempt's answer is worth a retry,
// the call goes on as [WithRetry] says with the last of them.
//
// One answer does not win: a 409 Conflict to a hedge of a request with an
// idempotency key while an earlier attempt is in flight. It is how servers
// that honour the key (Stripe, the IETF Idempotency-Key draft) say that the
// first request is still being processed, and the earlier attempt is left
// to bring its answer. Once no earlier attempt is in flight, the 409 is the
// answer.
//
// A hedge is an attempt like the others: it is numbered, observed and
// logged (its [Event] has Reason "hedge"), judged by the circuit breaker,
// counted in MaxAttempts, and paid from the retry budget ([RetryBudget]).
// No hedge is sent while the host's breaker is not closed, while its
// throttle gate is closed (looked at when the hedge is due, and again after
// the [Limiter]'s wait), when the budget is spent, or when the request
// body cannot be sent twice at once (a body without GetBody is hedged only
// once the first attempt has sent it whole). A hedge that is not sent
// takes nothing of a quota the host announced.
//
// Hedging is part of the retry layer: given without [WithRetry], it adds
// it, with MaxAttempts of 1 + MaxHedges.
func WithHedging(p HedgePolicy) Option {
	return optionFunc(func(c *config) { c.hedge = &p })
}

// normalized returns p with every default filled in.
func (p HedgePolicy) normalized() HedgePolicy {
	if p.MaxHedges <= 0 {
		p.MaxHedges = DefaultMaxHedges
	}
	if !(p.Percentile > 0 && p.Percentile < 1) {
		p.Percentile = DefaultHedgePercentile
	}
	if p.MinDelay <= 0 {
		p.MinDelay = DefaultHedgeMinDelay
	}
	return p
}

// hedging is the hedging state of one client.
type hedging struct {
	p   HedgePolicy
	lat *latencies // nil with a fixed Delay
	// closed reports whether req's breaker is closed; nil without breaker.
	closed func(*http.Request) bool
}

func newHedging(p HedgePolicy, keys *breakerSet, maxHosts int, closed func(*http.Request) bool) *hedging {
	h := &hedging{p: p.normalized(), closed: closed}
	if h.p.Delay <= 0 {
		h.lat = newLatencies(keys, maxHosts)
	}
	return h
}

// delay returns the hedge delay for req, and the histogram its attempts'
// latencies go to (nil with a fixed delay); ok is false while an adaptive
// delay has too few latencies to go on.
func (h *hedging) delay(req *http.Request) (d time.Duration, lat *hostLatency, ok bool) {
	if h.lat == nil {
		return h.p.Delay, nil, true
	}
	lat = h.lat.host(req)
	d, ok = lat.percentile(h.p.Percentile)
	return max(d, h.p.MinDelay), lat, ok
}

// isClosed reports whether the breaker of req is closed: hedges go only to
// a host whose breaker is.
func (t *breakerTransport) isClosed(req *http.Request) bool {
	b := t.set.get(req)
	if f := t.set.force(b); f != 0 {
		return f == forcedClosed
	}
	return !b.fleetOpen() && b.cb.State() == gobreaker.StateClosed
}

// parallel returns a request for a hedge, with a body of its own that does
// not disturb the attempts in flight, or false when there is none yet.
func (r *replay) parallel() (*http.Request, bool) {
	req := shallowCopy(r.orig)
	switch {
	case r.rec != nil:
		get := r.rec.complete()
		if get == nil {
			return nil, false
		}
		body, _ := get()
		req.Body, req.GetBody = body, get
	case r.getBody != nil:
		body, err := r.getBody()
		if err != nil || body == nil {
			return nil, false
		}
		req.Body = body
	}
	return req, true
}

// cancelBody ends an attempt's context when its body is read to EOF or
// closed, like the deadlineBody of a timeout.
type cancelBody struct {
	io.ReadCloser
	cancel context.CancelCauseFunc
}

func (b *cancelBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.cancel(nil)
	}
	return n, err
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel(nil)
	return err
}

// repanic hands the panic of an attempt's goroutine (a base transport's or
// a limiter's) on to the caller's goroutine, as a call without hedging
// would have it, once the other attempts of the round are cancelled,
// waited for and closed: a server that recovers the panics of its
// handlers then survives it.
func repanic(o attemptOutcome, inflight []*attemptOutcome, results chan attemptOutcome, kept *attemptOutcome) {
	for _, l := range inflight {
		l.cancel(errHedgeLost)
	}
	for range inflight {
		if l := <-results; l.resp != nil {
			l.resp.Body.Close()
		}
	}
	if kept != nil {
		if kept.resp != nil {
			kept.resp.Body.Close()
		}
		kept.cancel(nil)
	}
	o.cancel(nil)
	panic(o.panicked)
}

// errHeldBodyCut is the error of a retryable answer kept while other
// attempts of its round ran on, whose body could not be read in time.
var errHeldBodyCut = errors.New("resilient: the body of a retryable answer could not be read while other attempts ran")

// hold reads now, as a drain does (bounded in bytes and time), the body of
// a retryable answer that is kept while other attempts of its round run
// on: its attempt's deadline may pass meanwhile, and with it the body,
// and the answer may still be the one handed back. A body cut short makes
// the answer an error, as a drain cut short does in the retry loop.
func hold(req *http.Request, end time.Time, o attemptOutcome) attemptOutcome {
	if o.resp == nil {
		return o
	}
	now := time.Now()
	if o.resp = drain(o.req.Context(), o.resp, drainUntil(req, now, now, end)); o.resp == nil {
		o.err = errHeldBodyCut
	}
	return o
}
