package resilient

import (
	"cmp"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
)

// breakerKey identifies a breaker without building a string per request:
// the scheme and host of the URL, or a Key function's result in host.
type breakerKey struct {
	scheme, host string
}

func (k breakerKey) String() string {
	if k.scheme == "" {
		return k.host
	}
	return k.scheme + "://" + k.host
}

// breakerSet holds the breakers of one layer, created lazily per key and
// bounded by MaxBreakers.
type breakerSet struct {
	p   BreakerPolicy
	obs *observer
	// gate is the throttle gate that names its hosts with this set: the
	// call layer's, set when the layer is made; nil when there is none.
	gate *gate
	// fleet, when set, hears of every state change (fleet.go).
	fleet Fleet
	mu    sync.Mutex
	m     map[breakerKey]*hostBreaker
	tick  atomic.Int64 // a logical clock for least-recently-used order
}

func newBreakerSet(p BreakerPolicy, obs *observer) *breakerSet {
	return &breakerSet{p: p, obs: obs, m: make(map[breakerKey]*hostBreaker)}
}

// key returns the breaker key of req: the scheme and the host as net/http
// dials it. The host is lower-cased and loses a trailing dot (example.com.
// is the fully qualified example.com); the port loses its leading zeros,
// and is left out when it is empty or the scheme's default, so that
// example.com, example.com:, example.com:80 and EXAMPLE.com.:080 share one
// breaker. A URL already in that form costs no allocation.
func (s *breakerSet) key(req *http.Request) breakerKey {
	if s.p.Key != nil {
		return breakerKey{host: s.p.Key(req)}
	}
	if req.URL == nil {
		return breakerKey{}
	}
	scheme := strings.ToLower(req.URL.Scheme)
	return breakerKey{scheme, canonicalHost(scheme, req.URL.Host)}
}

// canonicalHost is host in the form of [breakerSet.key]. It returns host
// itself, not a copy, when nothing changes.
func canonicalHost(scheme, host string) string {
	if plainName(host) {
		return host // the common case, one pass over the bytes
	}
	name, port := host, ""
	if i := strings.LastIndexByte(host, ':'); i >= 0 && strings.IndexByte(host[i:], ']') < 0 {
		name, port = host[:i], host[i+1:] // not a colon of an IPv6 literal
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if p := strings.TrimLeft(port, "0"); p != port {
		port = cmp.Or(p, "0")
	}
	if port == defaultPort(scheme) {
		port = ""
	}
	switch {
	case port == "" && name == host:
		return host
	case port == "":
		return name
	case len(host) == len(name)+1+len(port) && host[:len(name)] == name && host[len(name)+1:] == port:
		return host
	}
	return name + ":" + port
}

// plainName reports whether host is already canonical: a lower-case name
// or IPv4 address, with no port and no trailing dot.
func plainName(host string) bool {
	for i := 0; i < len(host); i++ {
		if c := host[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return !strings.HasSuffix(host, ".")
}

// defaultPort is the port net/http dials for scheme when the URL has none.
func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	}
	return ""
}

// get returns the breaker for req, creating it if needed.
func (s *breakerSet) get(req *http.Request) *hostBreaker {
	return s.getKey(s.key(req))
}

// getKey returns the breaker of k, creating it if needed.
func (s *breakerSet) getKey(k breakerKey) *hostBreaker {
	s.mu.Lock()
	b, ok := s.m[k]
	if !ok {
		if len(s.m) >= s.p.MaxBreakers {
			s.shrink()
		}
		b = &hostBreaker{key: k.String(), fleet: s.fleet}
		b.cb = gobreaker.NewCircuitBreaker[struct{}](s.p.settings(b, s.obs))
		s.m[k] = b
	}
	s.mu.Unlock()
	b.lastUsed.Store(s.tick.Add(1))
	return b
}

// shrink drops breakers until a quarter of the room is free: closed ones
// first, least recently used first, then the others the same way. Doing it
// by the quarter keeps the cost per new key constant on average.
func (s *breakerSet) shrink() {
	evict(s.m, s.p.MaxBreakers*3/4, func(b *hostBreaker) int64 {
		if b.forced.Load() != 0 || b.cb.State() != gobreaker.StateClosed {
			return b.lastUsed.Load() + 1<<62 // forced, open and half-open breakers go last
		}
		return b.lastUsed.Load()
	})
}

// size returns the number of breakers held.
func (s *breakerSet) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

// hostBreaker is the breaker of one key.
type hostBreaker struct {
	key       string
	cb        *gobreaker.CircuitBreaker[struct{}]
	openUntil atomic.Int64 // Unix nanoseconds; set when the breaker opens, 0 once closed
	lastUsed  atomic.Int64 // breakerSet.tick when last used
	// excusing is the gate closure (the gate's clock when it closed) that
	// excuses the failures it caught, until the host's next success; 0:
	// none yet (see breakerTransport.judge).
	excusing atomic.Uint64
	// The fleet's part (fleet.go), unused without one: remote is when a
	// breaker that the fleet opened lets a probe through (Unix
	// nanoseconds; 0: not opened by the fleet), probing is set while a
	// call of this replica asks for the fleet's permit or probes.
	fleet   Fleet
	remote  atomic.Int64
	probing atomic.Bool
	// forced is the state a BreakerControl set (breakerforce.go): 0 none,
	// forcedClosed, or when a forced opening ends (Unix nanoseconds).
	forced atomic.Int64
}

func (b *hostBreaker) refusal(err error) error {
	e := &CircuitOpenError{Key: b.key, State: StateOpen}
	if errors.Is(err, gobreaker.ErrTooManyRequests) {
		e.State = StateHalfOpen
	} else {
		e.RetryAfter = max(time.Duration(b.openUntil.Load()-time.Now().UnixNano()), 0)
	}
	return e
}

// settings builds the gobreaker settings of the breaker b.
func (p *BreakerPolicy) settings(b *hostBreaker, obs *observer) gobreaker.Settings {
	st := gobreaker.Settings{
		Name:        b.key,
		MaxRequests: p.HalfOpenProbes,
		Timeout:     p.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if c.ConsecutiveFailures >= p.ConsecutiveFailures {
				return true
			}
			// Judged outcomes only: c.Requests also holds the excluded
			// requests (the caller's cancellations) and those in flight.
			judged := uint64(c.TotalSuccesses) + uint64(c.TotalFailures)
			return p.FailureRatio > 0 && judged >= uint64(p.MinRequests) &&
				float64(c.TotalFailures) >= p.FailureRatio*float64(judged)
		},
		OnStateChange: func(key string, from, to gobreaker.State) {
			var until time.Time
			switch to {
			case gobreaker.StateOpen:
				until = time.Now().Add(p.OpenTimeout)
				b.openUntil.Store(until.UnixNano())
			case gobreaker.StateClosed:
				b.openUntil.Store(0)
			}
			if b.fleet != nil {
				b.fleet.BreakerChanged(key, State(from), State(to), until)
			}
			obs.breaker(key, State(from), State(to))
			if p.OnStateChange != nil {
				p.OnStateChange(key, State(from), State(to))
			}
		},
		IsSuccessful: func(err error) bool { return err == nil },
		IsExcluded:   func(err error) bool { return err == errExcluded },
	}
	if p.FailureRatio > 0 {
		// A rolling window of ten buckets; without a ratio to judge, the
		// counts need no window and the breaker saves that work.
		st.Interval, st.BucketPeriod = p.Window, p.Window/10
	}
	return st
}
