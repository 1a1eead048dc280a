package resilient

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// maxThrottle bounds how long one answer can close a gate, whatever the
// server says, so that a wrong header cannot shut a host out for good.
const maxThrottle = 24 * time.Hour

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

	mu sync.Mutex
	m  map[breakerKey]gateEntry
}

// gateEntry is the state of one host's gate until the time until (Unix
// nanoseconds): closed when left is 0, else open for left more requests,
// as the host's RateLimit fields said. span is how long it was set for,
// which sets the spread of the callers that wait for it.
type gateEntry struct {
	until, span, left int64
}

// newGate returns the gate of a call layer. keys names the host of a
// request; max bounds how many closed gates are kept.
func newGate(keys *breakerSet, max int) *gate {
	return &gate{keys: keys, max: max, m: make(map[breakerKey]gateEntry)}
}

// closedFor returns how long req must wait before it is sent, or 0 when
// its host's gate is open, and the host's key. With take, an attempt that
// may go uses up one request of a quota the host announced. Callers that
// wait for the same gate are spread over a quarter of its span after it
// opens, so that they do not all hit the host at the same instant, and
// look again after their wait: an answer meanwhile may have closed it
// again.
func (g *gate) closedFor(req *http.Request, take bool) (time.Duration, breakerKey) {
	if g == nil {
		return 0, breakerKey{}
	}
	latest := g.latest.Load()
	if latest == 0 {
		return 0, breakerKey{} // the one atomic load of a call while all is well
	}
	now := time.Now().UnixNano()
	if now >= latest {
		g.sweep(latest)
		return 0, breakerKey{}
	}
	k := g.keys.key(req)
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.m[k]
	switch {
	case !ok || now >= e.until:
		return 0, k
	case e.left > 0:
		if take {
			e.left--
			g.m[k] = e
		}
		return 0, k
	}
	return time.Duration(e.until - now + rand.Int64N(e.span/4+1)), k
}

// close closes the gate of req's host for d, or longer when it is closed
// for longer already.
func (g *gate) close(req *http.Request, d time.Duration) {
	g.set(req, d, 0)
}

// set records that req's host takes left more requests in the next d (a
// closed gate when left is 0). A gate closed already stays closed at least
// as long; a quota already counted for the same stretch keeps the lesser
// count, since the host's count lags behind the requests in flight.
func (g *gate) set(req *http.Request, d time.Duration, left int64) {
	if d <= 0 {
		return
	}
	d = min(d, maxThrottle)
	k := g.keys.key(req)
	now := time.Now().UnixNano()
	until := now + int64(d)
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.m[k]
	switch {
	case ok && now < e.until && e.left == 0 && (left > 0 || e.until >= until):
		return // closed already, for as long
	case ok && now < e.until && left > 0:
		e.left = min(e.left, left) // the same stretch: keep its end
	default:
		if !ok && len(g.m) >= g.max {
			g.shrink(now)
		}
		e = gateEntry{until: until, span: int64(d), left: left}
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

// maxCountedQuota is the most requests left that the gate counts down. A
// larger quota cannot run out before later answers say it runs low, and
// counting it would put every call of the client on the gate's slow path
// (a clock read and a lock) for as long as it lasts.
const maxCountedQuota = 100

// observe closes the gate of req's host when resp says so: a 429 or 503
// with Retry-After, or RateLimit fields (any status) saying that no
// request is left until the reset; RateLimit fields that say a few are
// left (at most maxCountedQuota) set the host's quota. A response with no
// header fields costs nothing; others cost a few map lookups.
func (g *gate) observe(req *http.Request, resp *http.Response) {
	if g == nil || resp == nil || len(resp.Header) == 0 {
		return
	}
	if c := resp.StatusCode; c == http.StatusTooManyRequests || c == http.StatusServiceUnavailable {
		if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			g.close(req, d)
			return
		}
	}
	if left, d, ok := rateLimitQuota(resp.Header, time.Time{}); ok && left <= maxCountedQuota {
		g.set(req, d, left)
	}
}

// await waits for req's gate within the call's limits: the wait must end
// before end and the context's deadline and be at most maxWait. It returns
// a *ThrottledError when it does not fit, and the cancellation error when
// the caller gives up meanwhile. It looks again after each wait.
func (g *gate) await(req *http.Request, end time.Time, maxWait time.Duration) (waited bool, err error) {
	if g == nil {
		return false, nil
	}
	for {
		d, k := g.closedFor(req, true)
		if d <= 0 {
			return waited, nil
		}
		if d > maxWait || !fits(req.Context(), end, d) {
			return waited, &ThrottledError{Key: k.String(), RetryAfter: d}
		}
		if err := waitUntil(req, time.Now().Add(d)); err != nil {
			return true, err
		}
		waited = true
	}
}

// judge is the breaker's outcome of an attempt, except that behind the
// throttle gate a throttling answer (a 429 or 503 with Retry-After) is not
// judged: the host asked for a pause of a given length, which the gate
// keeps for every caller, and counted as failures the answers to a burst
// of concurrent callers would open the breaker of a healthy host.
func (t *breakerTransport) judge(req *http.Request, resp *http.Response, err error) error {
	if t.gated && err == nil && throttling(resp) {
		return errExcluded
	}
	return outcome(req, resp, err)
}

// throttling reports a 429 or 503 that says when to come back.
func throttling(resp *http.Response) bool {
	if c := resp.StatusCode; c != http.StatusTooManyRequests && c != http.StatusServiceUnavailable {
		return false
	}
	_, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return ok
}
