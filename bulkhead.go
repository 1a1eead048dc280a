package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultConcurrencyLimit is the default of [ConcurrencyPolicy.Limit].
const DefaultConcurrencyLimit = 64

// ConcurrencyPolicy configures the bulkhead of [WithConcurrencyLimit]. The
// zero value is the default policy.
type ConcurrencyPolicy struct {
	// Limit is how many attempts may be in flight to one host at once.
	// Default 64.
	Limit int
	// MaxQueue is how many attempts may wait for a slot of one host; an
	// attempt that finds the queue full is refused at once. Default 0:
	// none waits, as in Polly and resilience4j. Negative means 0.
	MaxQueue int
}

// WithConcurrencyLimit adds a bulkhead per host: at most p.Limit attempts
// are in flight to one host at once, retries and hedges included. Hosts
// are named like the circuit breakers ([HostKey], or [BreakerPolicy.Key])
// and as many are kept as breakers (MaxBreakers); when the bound is reached
// the hosts with nothing in flight are dropped first, least recently used
// first.
//
// An attempt holds its slot from when it is sent until its response
// headers have arrived and its body is read to EOF or closed, or until
// the attempt's context ends (its timeout, the caller's cancellation, a
// hedge that lost). A response the retry loop does not hand back is
// drained and closed, which frees its slot before the wait for the next
// attempt. An error frees the slot at once; so does a 101 Switching
// Protocols, whose connection is no request in flight any more.
//
// An attempt that finds every slot taken waits in a first-in first-out
// queue of p.MaxQueue places, until a slot frees, the caller gives up or
// the call's deadline (the caller's, or [WithTotalTimeout]'s) comes; the
// wait comes before the attempt's own timeout starts. A hedge never waits.
// An attempt that gets no slot is not sent: it fails with a
// [*BulkheadError] (errors.Is [ErrBulkheadFull]), which the circuit
// breaker never sees and the retry loop does not retry: a full bulkhead
// says the client is busy with that host, and another attempt to the same
// host would only join the queue. The call ends as one refused by an open
// breaker does, with the last response when an earlier attempt had one.
//
// The limit is fixed; [WithAdaptiveConcurrency] finds it from latency and
// errors instead. Of the two, the one given last is used. With the option
// off a call pays nothing for it.
func WithConcurrencyLimit(p ConcurrencyPolicy) Option {
	return optionFunc(func(c *config) { c.bulkhead, c.adaptive = &p, nil })
}

// ErrBulkheadFull is the error of an attempt that got no slot of its
// host's bulkhead ([WithConcurrencyLimit], [WithAdaptiveConcurrency]) and
// was not sent. errors.Is finds it through *url.Error and [*RetryError];
// errors.As with a [*BulkheadError] gives the host and the limit.
var ErrBulkheadFull = errors.New("resilient: too many attempts in flight")

// BulkheadError is returned for an attempt that a bulkhead refused without
// sending it.
type BulkheadError struct {
	// Key names the host: scheme, host and port, as the breaker's key.
	Key string
	// Limit is how many attempts the host had in flight, its limit then.
	Limit int
	// Err is why an attempt that waited for a slot gave up: the caller's
	// cancellation, or context.DeadlineExceeded when the call's deadline
	// came first. It is nil when the queue was full.
	Err error
}

// Error implements the error interface.
func (e *BulkheadError) Error() string {
	s := fmt.Sprintf("resilient: %d attempts in flight to %s", e.Limit, e.Key)
	if e.Err == nil {
		return s + ", no room to wait"
	}
	return s + ", waited until " + bare(e.Err)
}

// Is reports true for ErrBulkheadFull.
func (e *BulkheadError) Is(target error) bool { return target == ErrBulkheadFull }

// Unwrap returns why the wait ended, if the attempt waited.
func (e *BulkheadError) Unwrap() error { return e.Err }

// bulkhead holds the slots of every host of a call layer, created lazily
// per key and bounded like the breakers.
type bulkhead struct {
	keys     *breakerSet // names the hosts, as the breaker does
	max      int         // hosts kept
	limit    int         // the fixed limit, or the initial one when adaptive
	queue    int
	adaptive *AdaptivePolicy // normalized; nil: the limit is fixed
	mu       sync.Mutex
	m        map[breakerKey]*hostSlots
	tick     atomic.Int64 // a logical clock for least-recently-used order
}

func newBulkhead(keys *breakerSet, maxHosts int, p ConcurrencyPolicy, a *AdaptivePolicy) *bulkhead {
	b := &bulkhead{keys: keys, max: maxHosts, queue: max(p.MaxQueue, 0), m: make(map[breakerKey]*hostSlots)}
	b.limit = p.Limit
	if b.limit <= 0 {
		b.limit = DefaultConcurrencyLimit
	}
	if a != nil {
		n := a.normalized()
		b.adaptive, b.limit, b.queue = &n, n.InitialLimit, max(n.MaxQueue, 0)
	}
	return b
}

// host returns the slots of req's host, creating them if needed.
func (b *bulkhead) host(req *http.Request) *hostSlots {
	k := b.keys.key(req)
	b.mu.Lock()
	h, ok := b.m[k]
	if !ok {
		if len(b.m) >= b.max {
			evict(b.m, b.max*3/4, func(h *hostSlots) int64 {
				if h.busy() {
					return h.lastUsed.Load() + 1<<62 // hosts with attempts in flight go last
				}
				return h.lastUsed.Load()
			})
		}
		h = &hostSlots{b: b, key: k.String(), limit: b.limit}
		if b.adaptive != nil {
			h.ad.init(b.adaptive)
		}
		b.m[k] = h
	}
	b.mu.Unlock()
	h.lastUsed.Store(b.tick.Add(1))
	return h
}

// hostSlots are the slots of one host.
type hostSlots struct {
	b        *bulkhead
	key      string
	lastUsed atomic.Int64
	mu       sync.Mutex
	inFlight int
	limit    int
	waiters  []chan struct{} // first in, first out; a closed one got a slot
	ad       adaptiveState   // unused with a fixed limit
}

func (h *hostSlots) busy() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.inFlight > 0 || len(h.waiters) > 0
}

// acquire takes a slot of req's host for an attempt, waiting for one when
// wait is set and the queue has room, until end (zero: none), the
// request's context ends or its Cancel channel closes. waited reports a
// wait, after which the attempt's clock starts anew.
func (b *bulkhead) acquire(req *http.Request, end time.Time, wait bool) (h *hostSlots, waited bool, err error) {
	h = b.host(req)
	h.mu.Lock()
	if h.inFlight < h.limit && len(h.waiters) == 0 {
		h.inFlight++
		h.mu.Unlock()
		return h, false, nil
	}
	limit := h.limit
	if !wait || len(h.waiters) >= b.queue {
		h.mu.Unlock()
		return nil, false, &BulkheadError{Key: h.key, Limit: limit}
	}
	ch := make(chan struct{})
	h.waiters = append(h.waiters, ch)
	h.mu.Unlock()

	ctx := req.Context()
	var deadline <-chan time.Time
	if dl, ok := ctx.Deadline(); !end.IsZero() && (!ok || end.Before(dl)) {
		t := time.NewTimer(time.Until(end))
		defer t.Stop()
		deadline = t.C
	}
	var why error
	select {
	case <-ch:
		return h, true, nil
	case <-ctx.Done():
		why = ctx.Err()
	case <-req.Cancel: //lint:ignore SA1019 callers that still set it are honoured
		why = errRequestCanceled
	case <-deadline:
		why = context.DeadlineExceeded
	}
	h.mu.Lock()
	granted := true
	for i, w := range h.waiters {
		if w == ch {
			h.waiters, granted = append(h.waiters[:i], h.waiters[i+1:]...), false
			break
		}
	}
	h.mu.Unlock()
	if granted { // a slot came as the wait ended: hand it on
		h.release()
	}
	return nil, false, &BulkheadError{Key: h.key, Limit: limit, Err: why}
}

// release frees a slot: the first waiter takes it over, unless the limit
// has dropped below what is in flight.
func (h *hostSlots) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.waiters) > 0 && h.inFlight <= h.limit {
		close(h.waiters[0])
		h.waiters = h.waiters[1:]
		return
	}
	h.inFlight--
}

// grant wakes waiters while the limit has room; h.mu is held.
func (h *hostSlots) grant() {
	for len(h.waiters) > 0 && h.inFlight < h.limit {
		h.inFlight++
		close(h.waiters[0])
		h.waiters = h.waiters[1:]
	}
}

// newConcurrency returns the bulkhead of a call layer, its hosts named by
// keys (the breaker's set; nil: the default key) and bounded like them.
func newConcurrency(keys *breakerSet, p *ConcurrencyPolicy, a *AdaptivePolicy) *bulkhead {
	if keys == nil {
		keys = newBreakerSet(BreakerPolicy{}.normalized(), nil)
	}
	var fixed ConcurrencyPolicy
	if p != nil {
		fixed = *p
	}
	return newBulkhead(keys, keys.p.MaxBreakers, fixed, a)
}
