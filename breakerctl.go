package resilient

import (
	"fmt"
	"net/http"
	"slices"
	"time"
)

// BreakerControl reads and steers the circuit breakers of one client
// ([WithCircuitBreaker]): one breaker per key, named as [HostKey] names a
// request's host (or by [BreakerPolicy.Key] when it is set). Get it from
// [Transport.Breakers] or [BreakersOf]; both return nil for a client
// without a breaker layer, and every method of a nil *BreakerControl is
// safe: it reads a closed breaker with nothing counted, and steers
// nothing. Its methods are safe for concurrent use.
//
// Steering is an operator's tool, for one client, and is not shared with
// the other replicas of a [Fleet]: a breaker forced open or closed keeps
// that state until [BreakerControl.Reset] (or the end of a forced
// opening), whatever the host answers and whatever the fleet says. The
// transitions it makes are reported to [BreakerPolicy.OnStateChange] and
// the observers ([WithObserver]) like those of the breaker itself. The
// MaxBreakers bound drops forced breakers last, with the open ones. A
// layer made by the [CircuitBreaker] middleware on its own has no control.
type BreakerControl struct {
	set *breakerSet
}

// BreakerStatus is what [BreakerControl.Status] reads of a breaker.
type BreakerStatus struct {
	// Key names the breaker.
	Key string
	// State is the state requests meet now: a forced state when Forced,
	// else the breaker's own, or StateOpen while a [Fleet] holds it open.
	State State
	// Forced is set while [BreakerControl.ForceOpen] or
	// [BreakerControl.ForceClosed] decides the state.
	Forced bool
	// Counts are the breaker's own counts; see [Counts].
	Counts Counts
	// OpenUntil is when an open breaker lets a probe through, or when a
	// forced opening ends; zero when the breaker is not open, or is
	// forced open until Reset.
	OpenUntil time.Time
}

// Counts are the requests a breaker judged since it last changed state,
// within the rolling Window when [BreakerPolicy.FailureRatio] is set.
// Requests counts the requests it let through, the excluded ones (the
// caller's cancellations, local errors, throttling answers) and those in
// flight included. A forced breaker counts nothing: its counts are those
// it had when it was forced.
type Counts struct {
	Requests             uint32
	TotalSuccesses       uint32
	TotalFailures        uint32
	TotalExclusions      uint32
	ConsecutiveSuccesses uint32
	ConsecutiveFailures  uint32
}

// Breakers returns the control of t's circuit breakers, or nil when t has
// no breaker layer (no [WithCircuitBreaker]). A nil t has none.
func (t *Transport) Breakers() *BreakerControl {
	if t == nil {
		return nil
	}
	return t.breakers
}

// BreakersOf returns the control of the circuit breakers of a client that
// [New] or [Wrap] made, or whose Transport is a [*Transport]: nil when c
// is nil, its transport is another RoundTripper (one that wraps a
// *Transport included; keep the *Transport to ask it), or it has no
// breaker layer.
func BreakersOf(c *http.Client) *BreakerControl {
	if c == nil {
		return nil
	}
	t, _ := c.Transport.(*Transport)
	return t.Breakers()
}

// KeyOf returns the key of the breaker that a request to rawURL goes
// through, the key that the other methods take. It returns an error when
// rawURL does not parse.
func (c *BreakerControl) KeyOf(rawURL string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, rawURL, nil)
	if err != nil {
		return "", fmt.Errorf("resilient: no breaker key for this URL: %w", err)
	}
	if c == nil {
		return HostKey(req), nil
	}
	return c.set.key(req).String(), nil
}

// Keys returns the keys of the breakers the client holds now, sorted. A
// host gets its breaker with its first request, or when it is forced,
// and loses it to Reset or to the MaxBreakers bound.
func (c *BreakerControl) Keys() []string {
	if c == nil {
		return nil
	}
	c.set.mu.Lock()
	keys := make([]string, 0, len(c.set.m))
	for _, b := range c.set.m {
		keys = append(keys, b.key)
	}
	c.set.mu.Unlock()
	slices.Sort(keys)
	return keys
}

// State returns the state that requests to key meet now, and the
// breaker's counts: StateClosed and zero counts when there is no breaker
// for key. See [BreakerControl.Status].
func (c *BreakerControl) State(key string) (State, Counts) {
	s, _ := c.Status(key)
	return s.State, s.Counts
}

// Status reads the breaker of key; ok is false when the client holds none
// for key (no request yet, or Reset), which then reads as closed with
// nothing counted. Reading may move an open breaker whose OpenTimeout
// has passed to half-open, as a request would.
func (c *BreakerControl) Status(key string) (s BreakerStatus, ok bool) {
	if c == nil {
		return BreakerStatus{Key: key}, false
	}
	k := c.set.controlKey(key)
	b := c.set.lookup(k)
	if b == nil {
		return BreakerStatus{Key: k.String()}, false
	}
	gc := b.cb.Counts()
	s = BreakerStatus{Key: b.key, Counts: Counts(gc)}
	switch f := c.set.force(b); {
	case f == forcedClosed:
		s.State, s.Forced = StateClosed, true
	case f > 0:
		s.State, s.Forced = StateOpen, true
		if f != forcedOpenUntilReset {
			s.OpenUntil = time.Unix(0, f)
		}
	case b.fleetOpen():
		s.State, s.OpenUntil = StateOpen, time.Unix(0, b.remote.Load())
	default:
		s.State = State(b.cb.State())
		if u := b.openUntil.Load(); s.State == StateOpen && u != 0 {
			s.OpenUntil = time.Unix(0, u)
		}
	}
	return s, true
}

// ForceOpen opens the breaker of key for d, or until Reset when d is zero
// or negative (or so long that the clock cannot say when it ends): its requests fail at once with a [*CircuitOpenError] whose
// Forced is set, and are not counted. When d has passed, the breaker's
// own state and counts, as they were, decide again.
func (c *BreakerControl) ForceOpen(key string, d time.Duration) {
	f := int64(forcedOpenUntilReset)
	if now := time.Now().UnixNano(); d > 0 && int64(d) < f-now {
		f = now + int64(d) // a d too long for the clock means until Reset
	}
	c.steer(key, f, StateOpen)
}

// ForceClosed lets every request to key through until Reset, and counts
// none of them (resilience4j's DISABLED): the breaker is out of the way,
// even when a [Fleet] holds it open.
func (c *BreakerControl) ForceClosed(key string) {
	c.steer(key, forcedClosed, StateClosed)
}

// Reset gives key a fresh breaker: closed, nothing counted, not forced,
// not held open by a [Fleet] until its next news. Requests in flight
// report to the breaker they started with, which is dropped.
func (c *BreakerControl) Reset(key string) {
	if c == nil {
		return
	}
	s := c.set
	k := s.controlKey(key)
	s.mu.Lock()
	b := s.m[k]
	delete(s.m, k)
	s.mu.Unlock()
	if b != nil {
		s.notify(b.key, s.effective(b), StateClosed)
	}
}

// steer forces the breaker of key to f, which makes its state to.
func (c *BreakerControl) steer(key string, f int64, to State) {
	if c == nil {
		return
	}
	s := c.set
	b := s.getKey(s.controlKey(key))
	from := s.effective(b)
	b.forced.Store(f)
	s.notify(b.key, from, to)
}
