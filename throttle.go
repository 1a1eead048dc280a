package resilient

// The throttle gate at work (the gate itself is in gate.go): which answers
// close it, how an attempt waits for it, and how the breaker judges the
// attempts that a closure caught.

import (
	"math/rand/v2"
	"net/http"
	"time"
)

// maxCountedQuota is the most requests left that the gate counts down. A
// larger quota cannot run out before later answers say it runs low, and
// counting it would put every call of the client on the gate's slow path
// (a clock read and a lock) for as long as it lasts.
const maxCountedQuota = 100

// observe closes the gate of req's host when resp says so: a 429 or 503
// whose Retry-After asks for a wait, or RateLimit fields (any status)
// saying that no request is left until the reset; RateLimit fields that
// say a few are left (at most maxCountedQuota) set the host's quota. A
// response with no header fields costs nothing; others cost a few map
// lookups.
func (g *gate) observe(req *http.Request, resp *http.Response) {
	if g == nil || resp == nil || len(resp.Header) == 0 {
		return
	}
	if d, ok := pause(resp); ok {
		g.close(req, d)
		g.tell(req, d)
		return
	}
	if left, d, ok := rateLimitQuota(resp.Header, time.Time{}); ok && left <= maxCountedQuota {
		g.set(req, d, left)
		if left == 0 {
			g.tell(req, d)
		}
	}
}

// await waits for req's gate within the call's limits: the wait for the
// gate to open must be at most maxWait and end before end and the
// context's deadline; the random spread of the waiters is then added
// within what is left of those limits. It returns a *ThrottledError when
// the wait does not fit, and the cancellation error when the caller gives
// up meanwhile. It looks again after each wait, and with take, once the
// gate is open, takes one request of the host's quota (see look).
func (g *gate) await(req *http.Request, end time.Time, maxWait time.Duration, take bool) (waited bool, took uint64, err error) {
	if g == nil {
		return false, 0, nil
	}
	for {
		wait, spread, k, took := g.look(req, take)
		if wait <= 0 {
			return waited, took, nil
		}
		room := maxWait
		if dl, ok := callDeadline(req, end); ok {
			room = min(room, time.Until(dl)-1) // the attempt must start before it
		}
		if wait > room {
			return waited, 0, &ThrottledError{Key: k.String(), RetryAfter: wait}
		}
		d := wait + time.Duration(rand.Int64N(int64(min(spread, room-wait))+1))
		if err := waitUntil(req, time.Now().Add(d)); err != nil {
			return true, 0, err
		}
		waited = true
	}
}

// callDeadline is the earlier of req's context deadline and end (zero:
// none), and false when there is neither.
func callDeadline(req *http.Request, end time.Time) (time.Time, bool) {
	dl, ok := req.Context().Deadline()
	if !end.IsZero() && (!ok || end.Before(dl)) {
		return end, true
	}
	return dl, ok
}

// judge is the breaker's outcome of an attempt sent when the gate's clock
// read stamp and the wall clock start (read only for SlowCall), except
// for two kinds of answers that say nothing of the host's health behind
// the throttle gate:
//
//   - A throttling answer (a 429 or 503 whose Retry-After asks for a
//     wait) is not judged: the host asked for a pause of a given length,
//     which the gate keeps for every caller, and counted as failures the
//     answers to a burst of concurrent callers would open the breaker of a
//     healthy host. A Retry-After of 0, or a date in the past, closes no
//     gate and is judged as the status it comes with.
//   - A failure of an attempt that was sent before its host's gate closed,
//     and that ends while it is still closed, is not judged: the gate
//     holds every new attempt, so the attempts that end meanwhile are only
//     those already under way, the slowest of the host's, with no success
//     among them to break a run of failures. Counting them would let one
//     429 open the breaker of a healthy host that is slow now and then.
//     One closure excuses the failures it caught; the next one excuses
//     only once the host answered a success in between. A host that only
//     throttles or hangs, with no success ever, is judged from its second
//     closure on, so it still trips its breaker.
//
// Successes are judged as they are, at the cost of one atomic load; a
// failure costs one more while every gate is open.
func (t *breakerTransport) judge(b *hostBreaker, req *http.Request, resp *http.Response, err error, stamp uint64, start time.Time) error {
	if t.gated && err == nil && throttling(resp) {
		return errExcluded
	}
	o := t.set.p.verdict(req, resp, err, start) // outcome, or the policy's FailureIf and SlowCall
	switch {
	case o == nil:
		if b.excusing.Load() != 0 {
			b.excusing.Store(0) // a success: the next closure may excuse again
		}
	case o == errFailure:
		if c := t.set.gate.caughtBy(req, stamp); c != 0 && b.excuse(c) {
			return errExcluded
		}
	}
	return o
}

// excuse reports whether the gate closure c (a clock value of the gate)
// may excuse a failure it caught: the first closure since the host's last
// success, and that closure only, does.
func (b *hostBreaker) excuse(c uint64) bool {
	return b.excusing.CompareAndSwap(0, c) || b.excusing.Load() == c
}

// throttling reports a 429 or 503 that closes the host's gate: one whose
// Retry-After asks for a wait (see pause), or whose RateLimit fields say
// that no request is left until a reset to come.
func throttling(resp *http.Response) bool {
	if _, ok := pause(resp); ok {
		return true
	}
	if c := resp.StatusCode; c != http.StatusTooManyRequests && c != http.StatusServiceUnavailable {
		return false
	}
	left, d, ok := rateLimitQuota(resp.Header, time.Time{})
	return ok && left == 0 && d > 0
}

// pause returns the wait that resp asks for: a 429 or 503 with a
// Retry-After of more than 0. A Retry-After of 0, or a date in the past,
// asks for none, and such an answer is an ordinary 429 or 503.
func pause(resp *http.Response) (time.Duration, bool) {
	if c := resp.StatusCode; c != http.StatusTooManyRequests && c != http.StatusServiceUnavailable {
		return 0, false
	}
	d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	return d, ok && d > 0
}

// stamp is the gate's clock now, read by the breaker when it sends an
// attempt; 0 without a gate.
func (g *gate) stamp() uint64 {
	if g == nil {
		return 0
	}
	return g.clock.Load()
}

// caughtBy returns the closure (the clock when it closed) of req's host's
// gate when the gate is closed now and closed after stamp, the clock when
// an attempt was sent: that attempt was caught by the closure (see
// [breakerTransport.judge]); 0 when it was not. While every gate is open
// it costs one atomic load.
func (g *gate) caughtBy(req *http.Request, stamp uint64) uint64 {
	if g == nil || g.latest.Load() == 0 {
		return 0
	}
	k := g.keys.key(req)
	now := time.Now().UnixNano()
	g.mu.Lock()
	defer g.mu.Unlock()
	if e, ok := g.m[k]; ok && now < e.until && e.left == 0 && e.closed > stamp {
		return e.closed
	}
	return 0
}
