package resilientotel

import (
	"context"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/resilient-go/resilient"
)

// maxBreakers bounds the breakers the state gauge reports: three series
// each, 1 500 in all, under the SDK's default limit of 2 000 per instrument.
const maxBreakers = 500

// states are the breaker states in the order of [resilient.State], with
// their attribute values (snake_case, as OpenTelemetry enums are).
var states = [...]string{
	resilient.StateClosed:   "closed",
	resilient.StateHalfOpen: "half_open",
	resilient.StateOpen:     "open",
}

// breakerStates is the last known state of each breaker, for the state
// gauge. The observer sees transitions only, so a breaker appears at its
// first one (closed to open); since closed is where every breaker starts,
// a breaker not listed is closed or unused.
//
// At most limit breakers are kept. When a new one finds no room, the one
// whose last transition is oldest makes room, a closed one first: an open
// breaker is the news, a closed one the default.
type breakerStates struct {
	limit int
	mu    sync.Mutex
	m     map[string]*breakerEntry
	seq   uint64 // counts transitions, to find the oldest
}

type breakerEntry struct {
	state resilient.State
	seq   uint64
	sets  [len(states)]attribute.Set // key and each state, made once
}

func newBreakerStates(limit int) *breakerStates {
	return &breakerStates{limit: limit, m: make(map[string]*breakerEntry)}
}

// set records that the breaker key is now in state to.
func (b *breakerStates) set(key string, to resilient.State) {
	if to < 0 || int(to) >= len(states) {
		return // a state this package does not know
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	e, ok := b.m[key]
	if !ok {
		if len(b.m) >= b.limit && !b.evict() {
			return
		}
		e = &breakerEntry{}
		for s, name := range states {
			e.sets[s] = attribute.NewSet(BreakerKeyKey.String(key), BreakerStateKey.String(name))
		}
		b.m[key] = e
	}
	e.state, e.seq = to, b.seq
}

// evict removes the breaker whose last transition is oldest, a closed one
// if there is one; it reports whether it removed one.
func (b *breakerStates) evict() bool {
	var (
		victim string
		best   *breakerEntry
	)
	for k, e := range b.m {
		if best == nil || older(e, best) {
			victim, best = k, e
		}
	}
	if best == nil {
		return false
	}
	delete(b.m, victim)
	return true
}

// older reports whether a should be evicted before b.
func older(a, b *breakerEntry) bool {
	ac, bc := a.state == resilient.StateClosed, b.state == resilient.StateClosed
	if ac != bc {
		return ac
	}
	return a.seq < b.seq
}

// observe is the gauge's callback: for each breaker, 1 for its state and 0
// for the others, so that a sum by state counts the breakers in each.
func (b *breakerStates) observe(_ context.Context, o metric.Int64Observer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, e := range b.m {
		for s := range states {
			var v int64
			if resilient.State(s) == e.state {
				v = 1
			}
			o.Observe(v, metric.WithAttributeSet(e.sets[s]))
		}
	}
	return nil
}

// size returns the number of breakers kept.
func (b *breakerStates) size() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}
