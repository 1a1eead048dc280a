package resilient

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"time"
)

// Option configures the stack built by [New], [Wrap] and [NewTransport].
// Options are values returned by the With... functions of this package and
// by [Recommended]; later options override earlier ones.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// config holds the knobs of every layer. A layer whose knob is at its zero
// value is left out of the stack.
type config struct {
	attemptTimeout time.Duration
	totalTimeout   time.Duration
	retry          *RetryPolicy
	breaker        *BreakerPolicy
	fallback       func(*http.Request, error) (*http.Response, error)
	fallbackOn     func(*http.Response) bool
	idempotency    *idempotency
	observers      []func(context.Context, Event)
	logger         *slog.Logger
	logOpts        logOptions
	limiter        Limiter
	hedge          *HedgePolicy
	bulkhead       *ConcurrencyPolicy // bulkhead.go; nil: none
	adaptive       *AdaptivePolicy    // adaptive.go; nil: none
	unlayered      bool               // set by stack: no call layer
	breakers       *BreakerControl    // set by stack: the breaker layer's, nil without one
	fleet          Fleet
}

// stack is the only place that knows the order of the layers. It builds
// from the inside out, so read it bottom-up for the path of a request:
//
//	idempotency key → fallback → total timeout → retry → bulkhead → circuit breaker → attempt timeout → base
//
// Total timeout, retry and attempt timeout are one layer (call.go): one
// loop, one timer per attempt; it also tells the observers and the logger
// about every attempt and the outcome. The same layer holds the throttle
// gate (gate.go), asks the limiter, holds the bulkhead's slots (bulkhead.go)
// and sends the hedges (hedge.go); the gate, the bulkhead and the hedge
// delays name hosts with the breaker's key. It applies a request's own
// RequestPolicy (requestpolicy.go). The attempt's context is made before the
// breaker is asked, which changes nothing the breaker sees: it judges the
// outcome of the attempt, timeouts included.
func (c *config) stack(base http.RoundTripper) http.RoundTripper {
	obs := c.newObserver()
	rt := base
	var (
		open, closed func(*http.Request) bool
		keys         *breakerSet // the breakers' keys name the hosts of the gate and the hedges
	)
	if c.breaker != nil {
		b := newBreaker(rt, *c.breaker, obs)
		b.gated = c.retry != nil || c.hedge != nil // the call layer has the gate
		b.set.fleet = c.fleet
		rt, open, closed, keys = b, b.isOpen, b.isClosed, b.set
		c.breakers = &BreakerControl{set: b.set}
	}
	var idem string
	if c.idempotency != nil {
		idem = c.idempotency.header
	}
	rt = newCall(rt, callOptions{retry: c.retry, attempt: c.attemptTimeout, total: c.totalTimeout, open: open, obs: obs,
		idemHeader: idem, limiter: c.limiter, hedge: c.hedge, keys: keys, closed: closed,
		bulkhead: c.bulkhead, adaptive: c.adaptive})
	_, layered := rt.(*callTransport)
	c.unlayered = !layered // no call layer: a RequestPolicy has nothing to change
	if c.fleet != nil {
		join(c.fleet, rt, keys) // the fleet acts on this stack's gates and breakers
	}
	if c.fallback != nil {
		rt = &fallbackTransport{wrapped: wrapped{rt}, f: c.fallback, when: c.fallbackOn}
	}
	if c.idempotency != nil {
		rt = c.idempotency.layer(rt)
	}
	return rt
}

// Transport is the RoundTripper returned by [NewTransport]: the configured
// layers over a base transport. It is safe for concurrent use. The zero
// Transport has no layers and sends through [http.DefaultTransport].
type Transport struct {
	base http.RoundTripper
	rt   http.RoundTripper
	opts []Option // what built rt, kept so that a second wrap merges instead of nesting
	// unlayered is set when rt has no call layer, which would apply a
	// RequestPolicy (requestpolicy.go): RoundTrip checks the policy itself.
	unlayered bool
	breakers  *BreakerControl // nil without a breaker layer (breakerctl.go)
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip sends the request through the configured layers.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.rt == nil {
		return unlayered(http.DefaultTransport, req)
	}
	if t.unlayered {
		return unlayered(t.rt, req)
	}
	return t.rt.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of the base transport,
// if it has such a method.
func (t *Transport) CloseIdleConnections() {
	if t.base == nil {
		closeIdle(http.DefaultTransport)
		return
	}
	closeIdle(t.base)
}

// NewTransport returns a RoundTripper that sends requests through the layers
// chosen by opts, over base. A nil base means [http.DefaultTransport].
// Without options it only forwards to base. Its dynamic type is always
// [*Transport]; the signature keeps the interface it had from the start, so
// that code which type-asserts or reassigns the result keeps compiling.
//
// The layers are always stacked in the same order, whatever the order of
// opts: idempotency key, fallback, total timeout, retry, bulkhead
// ([WithConcurrencyLimit]), circuit breaker, attempt timeout, then base.
// A request may change some of them for itself: see [RequestPolicy].
//
// A base that is itself a *Transport is not wrapped a second time, which
// would multiply the attempts (3 × 3 retries send 9 requests): the result
// is one stack over that Transport's own base, built from its options
// followed by opts, so later options override earlier ones. The given
// Transport is not changed and keeps its own breakers and gates. Only a
// *Transport that is base itself is recognised; one hidden inside another
// RoundTripper is wrapped like any transport.
//
// Instrumentation that should see a whole call, such as an otelhttp
// transport that opens a span per request, goes outside:
// otelhttp.NewTransport(resilient.NewTransport(base, opts...)); one inside,
// as base, sees each attempt.
func NewTransport(base http.RoundTripper, opts ...Option) http.RoundTripper {
	if inner, ok := base.(*Transport); ok {
		base = nil // a nil *Transport is no transport
		if inner != nil {
			base, opts = inner.base, append(slices.Clip(inner.opts), opts...)
		}
	}
	if base == nil {
		base = http.DefaultTransport
	}
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	rt := c.stack(base)
	return &Transport{base: base, rt: rt, opts: slices.Clone(opts), unlayered: c.unlayered, breakers: c.breakers}
}

// New returns an *http.Client whose transport is a clone of
// [http.DefaultTransport] wrapped in the layers chosen by opts.
// New() alone is a plain client; New(Recommended()) is the usual start.
func New(opts ...Option) *http.Client {
	var base http.RoundTripper = http.DefaultTransport
	if t, ok := base.(*http.Transport); ok {
		base = t.Clone()
	}
	return &http.Client{Transport: NewTransport(base, opts...)}
}

// Wrap returns a shallow copy of existing whose transport is existing's
// transport wrapped in the layers chosen by opts. Jar, CheckRedirect and
// Timeout are kept; existing itself is not changed. A nil existing, or one
// with a nil Transport, means [http.DefaultTransport] as the base.
//
// Wrapping a client that Wrap or [New] made already does not nest a second
// stack: the new options are merged into the first ones, as [NewTransport]
// says, so Wrap(Wrap(c, a), b) behaves as Wrap(c, a, b).
//
// The layers go around existing's transport. If that transport is an
// instrumentation such as otelhttp, each attempt becomes its own span with
// no span for the call; to trace the call with a child span per attempt,
// put the layers between two of them instead:
//
//	client.Transport = otelhttp.NewTransport(resilient.NewTransport(otelhttp.NewTransport(base), opts...))
//
// Note that existing.Timeout, when set, still bounds the whole call including
// every retry and wait, like [WithTotalTimeout].
func Wrap(existing *http.Client, opts ...Option) *http.Client {
	var c http.Client
	if existing != nil {
		c = *existing
	}
	c.Transport = NewTransport(c.Transport, opts...)
	return &c
}

// closeIdle forwards CloseIdleConnections to rt when rt has it.
func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// wrapped is embedded by every layer: it holds the next RoundTripper and
// forwards CloseIdleConnections to it.
type wrapped struct {
	next http.RoundTripper
}

// CloseIdleConnections forwards to the next RoundTripper.
func (w wrapped) CloseIdleConnections() { closeIdle(w.next) }

// Defaults of [Recommended].
const (
	RecommendedTimeout      = 10 * time.Second
	RecommendedTotalTimeout = 30 * time.Second
)

// Recommended stacks the recommended set of layers in one option: a 10 s
// attempt timeout ([WithAttemptTimeout]), a 30 s total timeout ([WithTotalTimeout]),
// retries with the default [RetryPolicy] ([WithRetry]), a circuit breaker
// per host with the default [BreakerPolicy] ([WithCircuitBreaker]) and
// idempotency keys on POST and PATCH ([WithIdempotencyKey]), which also
// makes them safe to retry. Options after it override its parts:
//
//	resilient.New(resilient.Recommended(), resilient.WithAttemptTimeout(2*time.Second))
func Recommended() Option {
	return optionFunc(func(c *config) {
		for _, o := range []Option{
			WithAttemptTimeout(RecommendedTimeout),
			WithTotalTimeout(RecommendedTotalTimeout),
			WithRetry(RetryPolicy{}),
			WithCircuitBreaker(BreakerPolicy{}),
			WithIdempotencyKey(),
		} {
			o.apply(c)
		}
	})
}
