package resilient

import (
	"context"
	"net/http"
	"strings"
	"time"
)

// Fleet shares what one client learns about a host with the clients of
// other replicas of the same service: a throttle gate that an answer closed,
// a circuit breaker that opened. The package redisfleet
// (github.com/resilient-go/resilient/redisfleet) has one on Redis.
//
// The client tells the fleet its own news through GateClosed and
// BreakerChanged, which are called on the request's path, the breaker's
// lock held for BreakerChanged: they must not block, only hand the news on
// (a buffered channel that drops when full, say). The fleet tells a client
// the others' news through the [*FleetMember] given to Join, once for each
// stack built with [WithFleet].
//
// ProbePermit is asked before a breaker that is open, here or on another
// replica, lets its half-open probe go, so that the fleet sends one probe
// per interval rather than one per replica. It runs on the probe's path:
// the client gives it a context that ends within [FleetProbeTimeout], and
// takes an error, as well as a slow answer, as a yes: a fleet that cannot
// be asked leaves each replica to its own breaker.
//
// Keys are those of [HostKey], or of [BreakerPolicy.Key] when it is set.
// Every method must be safe for concurrent use.
type Fleet interface {
	// Join is called once for each stack built with the fleet; m acts on
	// that stack's gates and breakers.
	Join(m *FleetMember)
	// GateClosed is called when an answer of the host closes key's gate
	// on this replica until until.
	GateClosed(key string, until time.Time)
	// BreakerChanged is called when the breaker of key changes state on
	// this replica; until is when an open breaker lets a probe through
	// (zero for the other states).
	BreakerChanged(key string, from, to State, until time.Time)
	// ProbePermit reports whether this replica may send the probe of
	// key's breaker now; interval is the breaker's OpenTimeout, the least
	// time between two probes of the fleet.
	ProbePermit(ctx context.Context, key string, interval time.Duration) (bool, error)
}

// FleetProbeTimeout bounds the wait for [Fleet.ProbePermit]: a fleet that
// has not answered by then lets the probe go.
const FleetProbeTimeout = 100 * time.Millisecond

// WithFleet shares the throttle gates and the circuit breakers of the
// client with the other replicas of f; see [Fleet]. A gate that f closes
// holds this client's calls as one that a host answer closed; a breaker
// that f opens refuses them with a [*CircuitOpenError] until the time f
// gave, then lets a probe through when f permits it. A nil f removes the
// fleet. Without it the client pays nothing for this option's existence.
//
// f keeps each stack built with it (see [Fleet.Join]) for as long as f
// lives: build a client once and share it, rather than one per request.
func WithFleet(f Fleet) Option {
	return optionFunc(func(c *config) { c.fleet = f })
}

// FleetMember is one client stack as its [Fleet] sees it: the fleet
// closes its gates and opens its breakers with the news of other replicas.
// Its methods are safe for concurrent use and never block on a request.
type FleetMember struct {
	gate     *gate       // nil without retries
	breakers *breakerSet // nil without a breaker
	keys     *breakerSet // names hosts: the breakers' set, or the gate's default one
}

// CloseGate closes the gate of key until until, as a host answer
// would, without telling the fleet again. A member without a gate
// (no retries) ignores it.
func (m *FleetMember) CloseGate(key string, until time.Time) {
	if m == nil || m.gate == nil {
		return
	}
	m.gate.setKey(m.keys.parseKey(key), time.Until(until), 0)
}

// OpenBreaker opens the breaker of key until until, or longer when it is
// open for longer already: its calls fail with a [*CircuitOpenError], then
// one probe goes when [Fleet.ProbePermit] says so. The fleet is not told
// again. A member without a breaker ignores it.
func (m *FleetMember) OpenBreaker(key string, until time.Time) {
	if m == nil || m.breakers == nil {
		return
	}
	b := m.breakers.getKey(m.breakers.parseKey(key))
	u := until.UnixNano()
	for {
		r := b.remote.Load()
		if r >= u || b.remote.CompareAndSwap(r, u) {
			return
		}
	}
}

// parseKey is the breakerKey whose String is s.
func (s *breakerSet) parseKey(str string) breakerKey {
	if s.p.Key == nil {
		if scheme, host, ok := strings.Cut(str, "://"); ok {
			return breakerKey{scheme, host}
		}
	}
	return breakerKey{host: str}
}

// join gives f the member of the stack whose call layer is rt and whose
// breakers are set (nil: none).
func join(f Fleet, rt http.RoundTripper, set *breakerSet) {
	m := &FleetMember{breakers: set, keys: set}
	if ct, ok := rt.(*callTransport); ok && ct.gate != nil {
		ct.gate.fleet = f
		m.gate, m.keys = ct.gate, ct.gate.keys
	}
	if m.keys == nil {
		m.keys = newBreakerSet(BreakerPolicy{}.normalized(), nil)
	}
	f.Join(m)
}

// tell hands the closure of req's host's gate for d on to the fleet.
func (g *gate) tell(req *http.Request, d time.Duration) {
	if g.fleet != nil && d > 0 {
		g.fleet.GateClosed(g.keys.key(req).String(), time.Now().Add(min(d, maxThrottle)))
	}
}

// fleetProbe is the fleet's part of the breaker b before req is sent: a
// breaker that the fleet opened refuses it until the time given; then,
// and when b itself is due for its half-open probe, the fleet's permit is
// asked, by one call of the replica at a time. probing reports that req
// is that probe: done must then be called with its outcome.
func (b *hostBreaker) fleetProbe(req *http.Request, interval time.Duration) (probing bool, err error) {
	now := time.Now().UnixNano()
	r := b.remote.Load()
	if r != 0 && now < r {
		return false, &CircuitOpenError{Key: b.key, State: StateOpen, RetryAfter: time.Duration(r - now)}
	}
	if u := b.openUntil.Load(); u != 0 && now <= u || r == 0 && u == 0 {
		return false, nil // open here, and refused by gobreaker; or closed
	}
	if !b.probing.CompareAndSwap(false, true) {
		return false, &CircuitOpenError{Key: b.key, State: StateHalfOpen}
	}
	ctx, cancel := context.WithTimeout(req.Context(), FleetProbeTimeout)
	ok, perr := b.fleet.ProbePermit(ctx, b.key, interval)
	cancel()
	if perr == nil && !ok {
		b.probing.Store(false)
		return false, &CircuitOpenError{Key: b.key, State: StateHalfOpen}
	}
	return true, nil
}

// probed ends the probe that fleetProbe let go, whose outcome is o (sent
// is false when gobreaker refused it): a success ends the fleet's
// opening, a failure opens the breaker for interval more and tells the
// fleet.
func (b *hostBreaker) probed(sent bool, o error, interval time.Duration) {
	defer b.probing.Store(false)
	r := b.remote.Load()
	if r == 0 || !sent {
		return // gobreaker's own probe: its state change tells the fleet
	}
	switch o {
	case nil:
		if b.remote.CompareAndSwap(r, 0) {
			b.fleet.BreakerChanged(b.key, StateHalfOpen, StateClosed, time.Time{})
		}
	case errFailure:
		until := time.Now().Add(interval)
		if b.remote.CompareAndSwap(r, until.UnixNano()) {
			b.fleet.BreakerChanged(b.key, StateHalfOpen, StateOpen, until)
		}
	}
}

// fleetOpen reports whether the fleet holds b open now.
func (b *hostBreaker) fleetOpen() bool {
	r := b.remote.Load()
	return r != 0 && time.Now().UnixNano() < r
}
