package resilient

import (
	"context"
	"errors"
	"math"
	"net/http"
	"time"
)

// Defaults of [AdaptivePolicy].
const (
	DefaultAdaptiveMinLimit     = 1
	DefaultAdaptiveMaxLimit     = 1000
	DefaultAdaptiveInitialLimit = 20
)

// AdaptivePolicy configures [WithAdaptiveConcurrency]. The zero value is
// the default policy; every zero or negative field means its documented
// default.
type AdaptivePolicy struct {
	// MinLimit is the least the limit of a host goes down to. Default 1.
	MinLimit int
	// MaxLimit is the most the limit of a host goes up to. Default 1000;
	// never below MinLimit.
	MaxLimit int
	// InitialLimit is the limit of a host that has not been measured yet.
	// Default 20, within [MinLimit, MaxLimit].
	InitialLimit int
	// MaxQueue is how many attempts may wait for a slot of one host, as in
	// [ConcurrencyPolicy]. Default 0: an attempt over the limit is
	// refused at once, which keeps the latency of those sent near the
	// host's best.
	MaxQueue int
}

// WithAdaptiveConcurrency adds a bulkhead per host, as
// [WithConcurrencyLimit] does, whose limit is found from the host's
// latency and errors instead of guessed: the rule of TCP Vegas, as in
// Netflix's concurrency-limits. The latency of an attempt is the time to
// its response headers. Each window of answers (as many as the limit, at
// least 16) is compared with the host's latency without load (the least
// window average seen, which drifts slowly up to follow a host that
// became slower): the attempts queued at the host are estimated as
// limit × (1 − noLoad / latency); below 2·log10(limit) the limit grows by
// log10(limit) (at least 1), once the attempts in flight come near it;
// above 4·log10(limit) it shrinks by as much. Every 200 windows the limit
// is halved for a window to measure the no-load latency again, which
// moves half way to what it finds. A window with an overload answer
// (429, 503, an attempt timeout or a transport error) cuts the limit by
// 10 %. The caller's cancellations and hedges that lost are not counted.
//
// Each host keeps a few numbers; hosts are bounded as with
// [WithConcurrencyLimit]. Refusals are [*BulkheadError]s, treated as
// WithConcurrencyLimit says. Of the two options, the one given last is
// used.
func WithAdaptiveConcurrency(p AdaptivePolicy) Option {
	return optionFunc(func(c *config) { c.adaptive, c.bulkhead = &p, nil })
}

// normalized returns p with every default filled in.
func (p AdaptivePolicy) normalized() AdaptivePolicy {
	if p.MinLimit <= 0 {
		p.MinLimit = DefaultAdaptiveMinLimit
	}
	if p.MaxLimit <= 0 {
		p.MaxLimit = DefaultAdaptiveMaxLimit
	}
	p.MaxLimit = max(p.MaxLimit, p.MinLimit)
	if p.InitialLimit <= 0 {
		p.InitialLimit = DefaultAdaptiveInitialLimit
	}
	p.InitialLimit = min(max(p.InitialLimit, p.MinLimit), p.MaxLimit)
	return p
}

// Constants of the adaptive limit.
const (
	adaptiveMinWindow = 16  // answers per window, at least
	adaptiveBackoff   = 0.9 // the limit after an overload answer
	adaptiveProbe     = 200 // windows between two measures of the no-load latency
)

// adaptiveState is the adaptive limit of one host; guarded by its
// hostSlots' mu.
type adaptiveState struct {
	p      *AdaptivePolicy
	limit  float64
	noLoad float64 // the host's latency without load, in ns; 0: not known yet
	// windows counts down to the next probe: the limit is halved, the
	// window after is left to settle (probe 2) and noLoad moves half way
	// to the latency of the one after that (probe 1), so that it follows
	// a host that became slower.
	windows, probe int
	// The current window.
	n, drops, peak int
	sum            float64 // of the latencies, in ns
}

func (a *adaptiveState) init(p *AdaptivePolicy) {
	a.p, a.limit, a.windows = p, float64(p.InitialLimit), adaptiveProbe
}

// sample records the answer to one attempt that took rtt to its headers,
// and moves the limit at the end of a window.
func (h *hostSlots) sample(req *http.Request, rtt time.Duration, resp *http.Response, err error) {
	drop := false
	switch {
	case err == nil:
		drop = resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests
	case canceled(req) && !ours(req), errors.Is(err, errHedgeLost), errors.Is(err, errNoTimeLeft),
		errors.Is(err, ErrCircuitOpen), local(req, err):
		return // says nothing of the host's load
	default:
		drop = true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	a := &h.ad
	a.n++
	a.peak = max(a.peak, h.inFlight)
	if drop {
		a.drops++
	} else {
		a.sum += float64(rtt)
	}
	if a.n < max(int(a.limit), adaptiveMinWindow) {
		return
	}
	a.adjust()
	a.n, a.drops, a.peak, a.sum = 0, 0, 0, 0
	h.limit = int(a.limit)
	h.grant()
}

// adjust moves the limit at the end of a window.
func (a *adaptiveState) adjust() {
	lim := a.limit
	step := max(math.Log10(lim), 1)
	switch ok := a.n - a.drops; {
	case a.probe == 2: // answers to attempts sent before the limit was halved
		a.probe = 1
		return
	case a.drops > 0:
		lim *= adaptiveBackoff
	case ok > 0:
		avg := a.sum / float64(ok)
		switch {
		case a.noLoad == 0 || avg < a.noLoad:
			a.noLoad = avg
		case a.probe == 1: // half way, so that one slow window moves it little
			a.noLoad = (a.noLoad + avg) / 2
		}
		queued := lim * (1 - a.noLoad/avg)
		switch {
		case queued > 4*step:
			lim -= step
		case queued < 2*step && 2*a.peak >= int(lim):
			lim += step
		}
	}
	a.probe, a.windows = 0, a.windows-1
	if a.windows <= 0 {
		a.windows, a.probe, lim = adaptiveProbe, 2, lim/2
	}
	a.limit = min(max(lim, float64(a.p.MinLimit)), float64(a.p.MaxLimit))
}

// ours reports whether req's context was ended by a deadline of this
// package (an attempt or total timeout) rather than by the caller.
func ours(req *http.Request) bool {
	_, ok := context.Cause(req.Context()).(*deadlineCause)
	return ok
}
