package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sony/gobreaker/v2"
)

// Defaults of [BreakerPolicy]; docs/design.md says why.
const (
	DefaultConsecutiveFailures = 5
	DefaultOpenTimeout         = 30 * time.Second
	DefaultWindow              = 30 * time.Second
	DefaultMinRequests         = 100
	DefaultHalfOpenProbes      = 1
	DefaultMaxBreakers         = 10_000
)

// State is the state of a circuit breaker.
type State int

// The states of a circuit breaker.
const (
	// StateClosed lets every request through and counts failures.
	StateClosed State = iota
	// StateHalfOpen lets a few probes through; their success closes the
	// breaker, a failure opens it again.
	StateHalfOpen
	// StateOpen fails every request at once until OpenTimeout has passed.
	StateOpen
)

// String returns "closed", "half-open" or "open".
func (s State) String() string { return gobreaker.State(s).String() }

// BreakerPolicy configures the circuit breakers of [WithCircuitBreaker]. The
// zero value is the default policy; every zero or negative field means its
// documented default.
type BreakerPolicy struct {
	// ConsecutiveFailures trips the breaker after that many failures in a
	// row. Default 5.
	ConsecutiveFailures uint32
	// FailureRatio, when above zero, also trips the breaker when at least
	// that share of the judged requests in the rolling Window failed, once
	// there were MinRequests of them. A judged request is a success or a
	// failure: requests the caller cancelled, and those still in flight,
	// are not counted, so they cannot dilute the ratio. 0.1 with the
	// defaults is Polly's standard. Values above 1 mean 1; NaN means 0.
	FailureRatio float64
	// Window is the rolling window of FailureRatio. Default 30 s.
	Window time.Duration
	// MinRequests is how many judged requests (successes and failures) the
	// Window needs before FailureRatio is judged. Default 100.
	MinRequests uint32
	// OpenTimeout is how long an open breaker fails fast before it lets
	// probes through. Default 30 s.
	OpenTimeout time.Duration
	// HalfOpenProbes is how many requests a half-open breaker lets through
	// at once; that many successes in a row close it. Default 1.
	HalfOpenProbes uint32
	// FailureIf, when set, decides which attempts count as failures, in
	// place of the default rule, [IsHostFailure] (an error; a 5xx, 408 or
	// 429 status): true
	// is a failure, false a success. It sees the attempt's response or its
	// error (err is nil when resp is not), as soon as the headers arrive;
	// it must not read or close the body, and must be quick and safe for
	// concurrent use. The breaker judges the host only, so what is not the
	// host's doing never reaches FailureIf and is counted as neither: the
	// caller's own cancellation, a local error (a request that never left
	// the process), and the answers the throttle gate takes care of (see
	// [WithCircuitBreaker]). A failure it finds in an attempt that a gate
	// closure caught is excused as any failure is.
	FailureIf func(resp *http.Response, err error) bool
	// SlowCall, when above zero, counts an attempt whose response headers
	// took longer than that to arrive as a failure, even when it succeeded
	// (by FailureIf, or the default rule). An attempt counted as neither
	// stays so. Default 0: off, at no cost.
	SlowCall time.Duration
	// Key chooses the breaker of a request. Default: scheme, host and
	// port, so that each host fails on its own.
	Key func(*http.Request) string
	// OnStateChange, when set, is called on every transition, for logs and
	// metrics. It runs while the breaker is locked: it must return quickly
	// and must not send requests through the same client.
	OnStateChange func(key string, from, to State)
	// MaxBreakers bounds how many breakers are kept (one per key). When
	// the bound is reached the least recently used closed breakers are
	// dropped first. Default 10 000.
	MaxBreakers int
}

// CircuitOpenError is returned for a request that a circuit breaker refused
// without sending it.
type CircuitOpenError struct {
	// Key names the breaker: scheme, host and port by default.
	Key string
	// State is StateOpen, or StateHalfOpen when every probe slot is taken.
	State State
	// RetryAfter is how long until the breaker lets a probe through; zero
	// when it is half-open. For a forced opening, it is how long until the
	// opening ends; zero when it lasts until Reset.
	RetryAfter time.Duration
	// Forced is set when the breaker was forced open through
	// [BreakerControl.ForceOpen], rather than opened by failures.
	Forced bool
}

// Error implements the error interface.
func (e *CircuitOpenError) Error() string {
	switch {
	case e.Forced && e.RetryAfter > 0:
		return fmt.Sprintf("resilient: circuit breaker for %s is forced open for %v more", e.Key, e.RetryAfter.Round(time.Millisecond))
	case e.Forced:
		return fmt.Sprintf("resilient: circuit breaker for %s is forced open", e.Key)
	}
	if e.State == StateHalfOpen {
		return fmt.Sprintf("resilient: circuit breaker for %s is half-open and its probes are taken", e.Key)
	}
	return fmt.Sprintf("resilient: circuit breaker for %s is open, next probe in %v", e.Key, e.RetryAfter.Round(time.Millisecond))
}

// Is reports true for ErrCircuitOpen.
func (e *CircuitOpenError) Is(target error) bool { return target == ErrCircuitOpen }

// WithCircuitBreaker adds a circuit breaker per host, inside the retry loop:
// each attempt asks it first. After repeated failures (transport errors,
// timeouts, 5xx, 408, 429) calls to that host fail at once with
// [ErrCircuitOpen] and are not retried; after OpenTimeout a probe tests the
// host, and the breaker closes again by itself. Other 4xx count as
// successes, and the caller's own cancellation counts as neither.
// [BreakerPolicy.FailureIf] and [BreakerPolicy.SlowCall] change what
// counts as a failure; [BreakersOf] reads the breakers and steers them
// (force open, force closed, reset). With
// retries on, a 429 or 503 whose Retry-After asks for a wait counts as
// neither too: the throttle gate holds the host's calls for as long as it
// asked, and a burst of concurrent callers' 429s would otherwise open the
// breaker of a healthy host (a Retry-After of 0, or a date in the past,
// closes no gate and counts as the status it comes with). For the same
// reason an attempt sent before the host's gate closed that fails while it
// is still closed counts as neither: the gate holds every new attempt, so
// only the slowest attempts end meanwhile, with no success among them, and
// one 429 would otherwise open the breaker of a host that is only slow now
// and then.
//
// The breaker judges a host when its response headers arrive. A response
// body that then stalls, even past the [WithAttemptTimeout] deadline, is not
// counted as a failure: the body is read at the caller's pace, and a caller
// that pauses between reads meets the same attempt deadline, so a stalled
// host cannot be told apart from a slow reader. Waiting for the body to be
// closed before judging would also hold a half-open breaker's probe slot
// for as long as the caller holds the body. The stalled read fails with a
// [*TimeoutError] all the same.
func WithCircuitBreaker(p BreakerPolicy) Option {
	return optionFunc(func(c *config) { c.breaker = &p })
}

// Outcomes reported to gobreaker: success is nil.
var (
	errFailure  = errors.New("failure")
	errExcluded = errors.New("excluded")
)

type breakerTransport struct {
	wrapped
	set *breakerSet
	// gated is set when the call layer above has the throttle gate
	// (gate.go): a throttling answer is then the gate's, not a failure.
	gated bool
}

func newBreaker(next http.RoundTripper, p BreakerPolicy, obs *observer) *breakerTransport {
	if next == nil {
		next = http.DefaultTransport
	}
	return &breakerTransport{wrapped: wrapped{next}, set: newBreakerSet(p.normalized(), obs)}
}

// RoundTrip implements http.RoundTripper.
func (t *breakerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := t.set.get(req)
	if b.forced.Load() != 0 { // steered (breakerforce.go)
		if resp, done, err := t.steered(b, req); done {
			return resp, err
		}
	}
	var (
		resp     *http.Response
		err      error
		sent     bool
		probing  bool  // a probe the fleet permitted (fleet.go)
		judged   error // the outcome, for the fleet's probe
		returned bool  // Execute returned: the base did not panic
	)
	if b.fleet != nil {
		if probing, err = b.fleetProbe(req, t.set.p.OpenTimeout); err != nil {
			closeBody(req)
			return nil, err
		}
		if probing {
			// Deferred, so that a base transport that panics still hands
			// the probe back, as not sent: a panic says nothing of the host.
			defer func() { b.probed(sent && returned, judged, t.set.p.OpenTimeout) }()
		}
	}
	// Execute, not the two-step API: its callback does not escape, so a
	// request through a closed breaker allocates nothing here.
	_, refused := b.cb.Execute(func() (struct{}, error) {
		sent = true
		stamp := t.set.gate.stamp() // when it was sent, by the gate's clock
		var start time.Time
		if t.set.p.SlowCall > 0 {
			start = time.Now()
		}
		resp, err = normalize(t.next.RoundTrip(req))
		judged = t.judge(b, req, resp, err, stamp, start)
		return struct{}{}, judged
	})
	returned = true
	if !sent {
		closeBody(req)
		return nil, b.refusal(refused)
	}
	return resp, err
}

// isOpen reports whether the breaker of req refuses requests now.
func (t *breakerTransport) isOpen(req *http.Request) bool {
	b := t.set.get(req)
	if f := t.set.force(b); f != 0 {
		return f != forcedClosed
	}
	return b.fleetOpen() || b.cb.State() == gobreaker.StateOpen
}

// outcome classifies an attempt for the breaker.
func outcome(req *http.Request, resp *http.Response, err error) error {
	if err != nil {
		if canceled(req) {
			if _, ours := context.Cause(req.Context()).(*deadlineCause); !ours {
				return errExcluded // the caller gave up: says nothing of the host
			}
		}
		if local(req, err) {
			return errExcluded // never left the process, or our side held it up
		}
		return errFailure
	}
	if IsHostFailure(resp, nil) {
		return errFailure
	}
	return nil
}

// verdict is the outcome of an attempt sent at start under p: outcome's,
// with FailureIf in place of its rule for what it does not exclude, and
// SlowCall on top. Unset, they cost two comparisons.
func (p *BreakerPolicy) verdict(req *http.Request, resp *http.Response, err error, start time.Time) error {
	o := outcome(req, resp, err)
	if o == errExcluded {
		return o
	}
	if p.FailureIf != nil {
		o = nil
		if p.FailureIf(resp, err) {
			o = errFailure
		}
	}
	if o == nil && p.SlowCall > 0 && time.Since(start) > p.SlowCall {
		o = errFailure
	}
	return o
}

// normalized returns p with every default filled in.
func (p BreakerPolicy) normalized() BreakerPolicy {
	if p.ConsecutiveFailures == 0 {
		p.ConsecutiveFailures = DefaultConsecutiveFailures
	}
	if !(p.FailureRatio > 0) { // NaN too
		p.FailureRatio = 0
	}
	p.FailureRatio = min(p.FailureRatio, 1)
	if p.Window <= 0 {
		p.Window = DefaultWindow
	}
	if p.MinRequests == 0 {
		p.MinRequests = DefaultMinRequests
	}
	if p.OpenTimeout <= 0 {
		p.OpenTimeout = DefaultOpenTimeout
	}
	if p.HalfOpenProbes == 0 {
		p.HalfOpenProbes = DefaultHalfOpenProbes
	}
	if p.MaxBreakers <= 0 {
		p.MaxBreakers = DefaultMaxBreakers
	}
	return p
}
