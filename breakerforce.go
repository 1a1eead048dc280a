package resilient

// The forced states of a breaker that a BreakerControl steers
// (breakerctl.go), and how the breaker layer meets them.

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// The forced states of a hostBreaker (its forced field): 0 is none, and a
// positive value is the end of a forced opening in Unix nanoseconds.
const (
	forcedClosed         = -1
	forcedOpenUntilReset = math.MaxInt64
)

// controlKey is the breakerKey of a key given to a BreakerControl: as
// parseKey reads it, and with the default Key, spelled the way HostKey
// spells it ("HTTPS://API.example.com:443" is "https://api.example.com").
func (s *breakerSet) controlKey(key string) breakerKey {
	k := s.parseKey(key)
	if s.p.Key == nil && k.scheme != "" {
		k.scheme = strings.ToLower(k.scheme)
		k.host = canonicalHost(k.scheme, k.host)
	}
	return k
}

// lookup returns the breaker of k, or nil when there is none.
func (s *breakerSet) lookup(k breakerKey) *hostBreaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

// force returns b's forced state now: 0 (none), forcedClosed, or the end
// of a forced opening. A forced opening whose time is up ends here,
// and the observers hear of it. It costs one atomic load when b is not
// forced.
func (s *breakerSet) force(b *hostBreaker) int64 {
	f := b.forced.Load()
	if f <= 0 || time.Now().UnixNano() < f {
		return f
	}
	if b.forced.CompareAndSwap(f, 0) {
		s.notify(b.key, StateOpen, s.effective(b))
	}
	return 0
}

// effective is the state requests to b meet now.
func (s *breakerSet) effective(b *hostBreaker) State {
	switch f := s.force(b); {
	case f == forcedClosed:
		return StateClosed
	case f > 0, b.fleetOpen():
		return StateOpen
	}
	return State(b.cb.State())
}

// notify reports a transition that the breaker itself did not make to
// OnStateChange and the observers; the fleet is not told.
func (s *breakerSet) notify(key string, from, to State) {
	if from == to {
		return
	}
	s.obs.breaker(key, from, to)
	if s.p.OnStateChange != nil {
		s.p.OnStateChange(key, from, to)
	}
}

// steered applies b's forced state to req: a breaker forced closed sends
// it without judging it, one forced open refuses it. done is false when b
// is not forced (or its forced opening just ended): the breaker decides.
func (t *breakerTransport) steered(b *hostBreaker, req *http.Request) (resp *http.Response, done bool, err error) {
	switch f := t.set.force(b); {
	case f == 0:
		return nil, false, nil
	case f == forcedClosed:
		resp, err = normalize(t.next.RoundTrip(req))
		return resp, true, err
	default:
		closeBody(req)
		e := &CircuitOpenError{Key: b.key, State: StateOpen, Forced: true}
		if f != forcedOpenUntilReset {
			e.RetryAfter = max(time.Duration(f-time.Now().UnixNano()), 0)
		}
		return nil, true, e
	}
}
