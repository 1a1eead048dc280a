package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// RequestPolicy overrides, for one request, the retry, hedging and timeout
// knobs of the client that sends it, so that one client serves routes with
// different needs: a POST that must not be retried, a GET that may be
// hedged sooner, a report that needs 60 s. Attach it to the request's
// context with [WithRequestPolicy]. The zero RequestPolicy changes nothing.
//
// A RequestPolicy tunes the layers the client has; it cannot add one. A
// Retry, Hedge, AttemptTimeout or TotalTimeout for a client built without
// that layer ([WithRetry], [WithHedging], [WithAttemptTimeout],
// [WithTotalTimeout]) fails the call with [ErrRequestPolicy], as do
// overrides that contradict each other, instead of being ignored. Turning
// off a layer the client does not have (NoRetry, NoHedge) is no error: the
// request is sent as asked.
//
// The layers' per-host state stays the client's: the retry budget, the
// throttle gates, the breakers, the bulkheads and the latencies of the
// adaptive hedge delay.
type RequestPolicy struct {
	// Retry, when set, replaces the client's RetryPolicy for this request,
	// as a whole: its zero fields mean the package's defaults, not the
	// client's values. Its Budget must be zero, since the retry budget is
	// the client's.
	Retry *RetryPolicy
	// NoRetry sends the request at most once, hedges included; the throttle
	// gate and the breaker still apply.
	NoRetry bool
	// Hedge, when set, replaces the client's HedgePolicy for this request,
	// as a whole. A zero Delay (the adaptive delay) needs the client's own
	// adaptive hedging, whose latencies it reads. Hedges count in the
	// retry policy's MaxAttempts, which must leave room for one.
	Hedge *HedgePolicy
	// NoHedge sends no hedge for this request.
	NoHedge bool
	// AttemptTimeout, when above zero, replaces the client's attempt
	// timeout. Negative is an error.
	AttemptTimeout time.Duration
	// TotalTimeout, when above zero, replaces the client's total timeout.
	// The caller's context deadline still holds. Negative is an error.
	TotalTimeout time.Duration
}

// ErrRequestPolicy is the error of a call whose [RequestPolicy] cannot
// apply: overrides that contradict each other, or that change a layer the
// client does not have. The call is not sent. errors.Is finds it through
// *url.Error; the text says which override is at fault. In a chain of
// [Middleware] that the caller assembled, each link applies the overrides
// it has, and an override that no link has is ignored: only a stack built
// by [New], [Wrap] or [NewTransport] knows all its layers.
var ErrRequestPolicy = errors.New("resilient: request policy cannot apply")

// requestPolicyKey is the context key of a RequestPolicy.
type requestPolicyKey struct{}

// WithRequestPolicy returns a copy of ctx that carries p for the requests
// made with it: http.NewRequestWithContext(resilient.WithRequestPolicy(ctx,
// p), ...). A policy replaces, as a whole, one that ctx carries already.
// See [RequestPolicy] for what it may change.
func WithRequestPolicy(ctx context.Context, p RequestPolicy) context.Context {
	return context.WithValue(ctx, requestPolicyKey{}, &p)
}

// RequestPolicyFrom returns the RequestPolicy that ctx carries, if any.
func RequestPolicyFrom(ctx context.Context) (RequestPolicy, bool) {
	p, ok := ctx.Value(requestPolicyKey{}).(*RequestPolicy)
	if !ok {
		return RequestPolicy{}, false
	}
	return *p, true
}

// policyErr is an ErrRequestPolicy that says why.
func policyErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrRequestPolicy, fmt.Sprintf(format, args...))
}

// check reports the overrides of p that contradict each other.
func (p *RequestPolicy) check() error {
	switch {
	case p.NoRetry && p.Retry != nil:
		return policyErr("both Retry and NoRetry are set")
	case p.NoHedge && p.Hedge != nil:
		return policyErr("both Hedge and NoHedge are set")
	case p.NoRetry && p.Hedge != nil:
		return policyErr("Hedge with NoRetry: a hedge is another attempt")
	case p.Retry != nil && p.Retry.Budget != (RetryBudget{}):
		return policyErr("Retry.Budget is set: the retry budget is the client's")
	case p.AttemptTimeout < 0:
		return policyErr("negative AttemptTimeout %v", p.AttemptTimeout)
	case p.TotalTimeout < 0:
		return policyErr("negative TotalTimeout %v", p.TotalTimeout)
	}
	return nil
}

// override returns a copy of the call layer t with p applied, or an
// ErrRequestPolicy. It runs only for a request that carries a policy. A
// layer made by a Middleware ([Retry], [AttemptTimeout], [TotalTimeout]) is
// one link of a chain that the caller assembled, whose other links may
// hold what it lacks: it applies the overrides it has and leaves the
// others to them, so in such a chain an override that no link has is
// ignored.
func (t *callTransport) override(p *RequestPolicy) (*callTransport, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	o := *t
	switch {
	case p.NoRetry && t.retry != nil:
		r := *t.retry
		r.MaxAttempts = 1
		o.retry = &r
	case p.Retry != nil && t.retry == nil:
		if !t.chained {
			return nil, policyErr("Retry for a client without retries (WithRetry)")
		}
	case p.Retry != nil:
		r := p.Retry.normalized()
		o.retry = &r
	}
	switch {
	case p.NoRetry, p.NoHedge:
		o.hedge = nil
	case p.Hedge != nil && t.hedge == nil:
		if !t.chained {
			return nil, policyErr("Hedge for a client without hedging (WithHedging)")
		}
	case p.Hedge != nil:
		h := &hedging{p: p.Hedge.normalized(), closed: t.hedge.closed}
		if h.p.Delay <= 0 {
			if h.lat = t.hedge.lat; h.lat == nil {
				return nil, policyErr("Hedge with the adaptive delay for a client whose hedging has a fixed Delay")
			}
		}
		if o.retry.MaxAttempts < 2 {
			return nil, policyErr("Hedge with a MaxAttempts of 1: a hedge is another attempt")
		}
		o.hedge = h
	}
	switch {
	case p.AttemptTimeout > 0 && t.attempt != nil:
		o.attempt = &deadlineCause{ScopeAttempt, p.AttemptTimeout}
	case p.AttemptTimeout > 0 && !t.chained:
		return nil, policyErr("AttemptTimeout for a client without one (WithAttemptTimeout)")
	}
	switch {
	case p.TotalTimeout > 0 && t.total != nil:
		o.total = &deadlineCause{ScopeTotal, p.TotalTimeout}
	case p.TotalTimeout > 0 && !t.chained:
		return nil, policyErr("TotalTimeout for a client without one (WithTotalTimeout)")
	}
	return &o, nil
}

// policyOf returns the policy req carries, or nil: the one context lookup
// that a call without a policy pays.
func policyOf(req *http.Request) *RequestPolicy {
	p, _ := req.Context().Value(requestPolicyKey{}).(*RequestPolicy)
	return p
}

// unlayered is the RoundTrip of a Transport with no call layer: a policy
// that asks for more than turning layers off cannot apply.
func unlayered(rt http.RoundTripper, req *http.Request) (*http.Response, error) {
	if p := policyOf(req); p != nil {
		if err := p.check(); err != nil {
			closeBody(req)
			return nil, err
		}
		if p.Retry != nil || p.Hedge != nil || p.AttemptTimeout > 0 || p.TotalTimeout > 0 {
			closeBody(req)
			return nil, policyErr("the client has no retry, hedging or timeout layer to change")
		}
	}
	return rt.RoundTrip(req)
}
