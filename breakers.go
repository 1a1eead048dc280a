package resilient

import (
	"errors"
	"net/http"
	"slices"
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
	p    BreakerPolicy
	obs  *observer
	mu   sync.Mutex
	m    map[breakerKey]*hostBreaker
	tick atomic.Int64 // a logical clock for least-recently-used order
}

func newBreakerSet(p BreakerPolicy, obs *observer) *breakerSet {
	return &breakerSet{p: p, obs: obs, m: make(map[breakerKey]*hostBreaker)}
}

// key returns the breaker key of req: scheme, lower-case host and port, the
// port left out when it is the scheme's default.
func (s *breakerSet) key(req *http.Request) breakerKey {
	if s.p.Key != nil {
		return breakerKey{host: s.p.Key(req)}
	}
	if req.URL == nil {
		return breakerKey{}
	}
	scheme, host := strings.ToLower(req.URL.Scheme), strings.ToLower(req.URL.Host)
	switch {
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = host[:len(host)-3]
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = host[:len(host)-4]
	}
	return breakerKey{scheme, host}
}

// get returns the breaker for req, creating it if needed.
func (s *breakerSet) get(req *http.Request) *hostBreaker {
	k := s.key(req)
	s.mu.Lock()
	b, ok := s.m[k]
	if !ok {
		if len(s.m) >= s.p.MaxBreakers {
			s.shrink()
		}
		b = &hostBreaker{key: k.String()}
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
	type aged struct {
		k      breakerKey
		closed bool
		used   int64
	}
	all := make([]aged, 0, len(s.m))
	for k, b := range s.m {
		all = append(all, aged{k, b.cb.State() == gobreaker.StateClosed, b.lastUsed.Load()})
	}
	slices.SortFunc(all, func(a, b aged) int {
		if a.closed != b.closed {
			if a.closed {
				return -1
			}
			return 1
		}
		switch {
		case a.used < b.used:
			return -1
		case a.used > b.used:
			return 1
		}
		return 0
	})
	target := s.p.MaxBreakers * 3 / 4
	for _, a := range all {
		if len(s.m) <= target {
			return
		}
		delete(s.m, a.k)
	}
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
	openUntil atomic.Int64 // Unix nanoseconds; set when the breaker opens
	lastUsed  atomic.Int64 // breakerSet.tick when last used
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
			return p.FailureRatio > 0 && c.Requests >= p.MinRequests &&
				float64(c.TotalFailures) >= p.FailureRatio*float64(c.Requests)
		},
		OnStateChange: func(key string, from, to gobreaker.State) {
			if to == gobreaker.StateOpen {
				b.openUntil.Store(time.Now().Add(p.OpenTimeout).UnixNano())
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
