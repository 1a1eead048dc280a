package resilient

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// gate is the per-host throttle gate of the call layer, on whenever
// retries are. A 429 or 503 with Retry-After, or RateLimit fields saying
// that the quota is used up, closes the gate of that host (the breaker's
// key) until the time the server gave: the attempts of every call to that
// host then wait for it, when the wait fits their deadline and
// MaxRetryAfter, or fail at once with a [*ThrottledError], instead of each
// sending its own request into the throttle.
//
// While every gate is open, which is the usual case, asking costs one
// atomic load. Gates are kept only while closed and at most max of them
// (the breaker set's bound); when they are all open again the map is
// emptied by the next call that looks.
type gate struct {
	keys *breakerSet // its key method names the host; the breaker's own set when there is one
	max  int
	// latest is when the last closed gate opens again, in Unix
	// nanoseconds; 0 when every gate is open. Written under mu.
	latest atomic.Int64
	// clock is the gate's logical clock: it ticks, under mu, when an entry
	// is made and when a gate closes. The breaker reads it when it sends
	// an attempt, to tell later whether the host's gate closed after that
	// (see caughtBy).
	clock atomic.Uint64

	mu sync.Mutex
	m  map[breakerKey]gateEntry

	fleet Fleet // hears of the gates that answers close (fleet.go); nil: none
}

// gateEntry is the state of one host's gate until the time until (Unix
// nanoseconds): closed when left is 0, else open for left more requests.
// span is how long it was set for, which sets the spread of the callers
// that wait for it.
type gateEntry struct {
	until, span, left int64
	// counted is set when the host announced a quota (left > 0) that the
	// client counts down: a gate counted down to 0 is closed on the
	// client's word, which the host's next answer replaces. Without it the
	// host closed the gate itself (Retry-After, or no request left).
	counted bool
	id      uint64 // the clock when the entry was made: a refund's ticket
	closed  uint64 // the clock when the gate closed; 0 while it has not
}

// newGate returns the gate of a call layer. keys names the host of a
// request; max bounds how many closed gates are kept.
func newGate(keys *breakerSet, max int) *gate {
	return &gate{keys: keys, max: max, m: make(map[breakerKey]gateEntry)}
}

// closedFor returns how long req must wait before it is sent, or 0 when
// its host's gate is open, and the host's key. With take, an attempt that
// may go uses up one request of a quota the host announced. The wait
// includes a random spread over a quarter of the closure, so that the
// callers that wait for the same gate do not all hit the host at the same
// instant.
func (g *gate) closedFor(req *http.Request, take bool) (time.Duration, breakerKey) {
	wait, spread, k, _ := g.look(req, take)
	if wait <= 0 {
		return 0, k
	}
	return wait + time.Duration(rand.Int64N(int64(spread)+1)), k
}

// look returns how long req's host's gate stays closed (0 when it is
// open), the spread of its waiters (a quarter of its span), the host's
// key, and, with take and an open gate, the id of the quota it took one
// request of (0 when none was counted), for a refund when the attempt is
// not sent after all.
func (g *gate) look(req *http.Request, take bool) (wait, spread time.Duration, k breakerKey, took uint64) {
	if g == nil {
		return 0, 0, breakerKey{}, 0
	}
	latest := g.latest.Load()
	if latest == 0 {
		return 0, 0, breakerKey{}, 0 // the one atomic load of a call while all is well
	}
	now := time.Now().UnixNano()
	if now >= latest {
		g.sweep(latest)
		return 0, 0, breakerKey{}, 0
	}
	k = g.keys.key(req)
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.m[k]
	switch {
	case !ok || now >= e.until:
		return 0, 0, k, 0
	case e.left > 0:
		if take {
			if e.left--; e.left == 0 {
				e.closed = g.clock.Add(1)
			}
			g.m[k] = e
			return 0, 0, k, e.id
		}
		return 0, 0, k, 0
	}
	return time.Duration(e.until - now), time.Duration(e.span / 4), k, 0
}

// refund gives back the request that an attempt took of the quota took
// (an id from look) when the attempt was not sent after all: refused by
// the limiter or the breaker, or out of time. A quota that the host has
// replaced since is left as it is.
func (g *gate) refund(req *http.Request, took uint64) {
	if g == nil || took == 0 {
		return
	}
	k := g.keys.key(req)
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.m[k]; ok && e.id == took && time.Now().UnixNano() < e.until {
		e.left++
		g.m[k] = e
	}
}

// close closes the gate of req's host for d, or longer when it is closed
// for longer already.
func (g *gate) close(req *http.Request, d time.Duration) {
	g.set(req, d, 0)
}

// set records that req's host takes left more requests in the next d (a
// closed gate when left is 0). A gate the host closed already stays closed
// at least as long. A quota counted on the client's side keeps the lesser
// count, since the host's count lags behind the requests in flight, but
// ends at the host's reset when that comes sooner; and when the host says
// that no request is left, its word replaces the count, reset included.
func (g *gate) set(req *http.Request, d time.Duration, left int64) {
	if d <= 0 {
		return
	}
	g.setKey(g.keys.key(req), d, left)
}

// setKey is set for the host of key k.
func (g *gate) setKey(k breakerKey, d time.Duration, left int64) {
	if d <= 0 {
		return
	}
	d = min(d, maxThrottle)
	now := time.Now().UnixNano()
	until := now + int64(d)
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.m[k]
	live := ok && now < e.until
	switch {
	case live && !e.counted && (left > 0 || e.until >= until):
		return // closed by the host already, for as long
	case live && e.counted && left > 0: // the same stretch
		if left < e.left {
			// The host's count replaces ours; it never saw the requests
			// taken and not sent, so their refunds are void.
			e.left, e.id = left, g.clock.Add(1)
		}
		if until < e.until {
			e.until, e.span = until, int64(d)
		}
	default:
		if !ok && len(g.m) >= g.max {
			g.shrink(now)
		}
		closed := uint64(0)
		switch {
		case left > 0:
		case live && e.left == 0:
			closed = e.closed // closed already: since then
		default:
			closed = g.clock.Add(1)
		}
		e = gateEntry{until: until, span: int64(d), left: left, counted: left > 0, id: g.clock.Add(1), closed: closed}
	}
	g.m[k] = e
	if e.until > g.latest.Load() {
		g.latest.Store(e.until)
	}
}

// sweep empties the map once every gate is open again, unless a gate was
// closed since latest was read.
func (g *gate) sweep(latest int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.latest.Load() == latest {
		clear(g.m)
		g.latest.Store(0)
	}
}

// shrink makes room: it drops the gates that are open again, then, when
// that is not enough, those that open the soonest, down to three quarters
// of max. Called with mu held.
func (g *gate) shrink(now int64) {
	for k, e := range g.m {
		if now >= e.until {
			delete(g.m, k)
		}
	}
	if len(g.m) < g.max {
		return
	}
	evict(g.m, g.max*3/4, func(e gateEntry) int64 { return e.until })
}

// size returns the number of closed gates held.
func (g *gate) size() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.m)
}
