package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/resilient-go/resilient"
)

// DefaultMaxHosts bounds how many hosts' buckets a [Limiter] keeps, as
// resilient.DefaultMaxBreakers bounds the breakers.
const DefaultMaxHosts = 10_000

// WithRateLimit adds a client-side rate limit per host to a resilient
// stack: at most perSecond requests per second on average to each host
// (scheme, host and port, as [resilient.HostKey] names it), with bursts of
// up to burst requests. It is [resilient.WithLimiter] with [New].
//
// A perSecond of zero or less, or NaN, sets no limit; +Inf sets none
// either. A burst below 1 means 1.
func WithRateLimit(perSecond float64, burst int) resilient.Option {
	return resilient.WithLimiter(New(perSecond, burst))
}

// Limiter is a [resilient.Limiter] with one [rate.Limiter] per host,
// created on a host's first request and dropped, least recently used
// first, when more than DefaultMaxHosts are held. It is safe for
// concurrent use; make one with [New]. A nil or zero Limiter sets no
// limit.
type Limiter struct {
	limit rate.Limit
	burst int
	max   int
	tick  atomic.Int64

	mu sync.Mutex
	m  map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	used atomic.Int64
}

var _ resilient.Limiter = (*Limiter)(nil)

// New returns a Limiter of perSecond requests per second per host, with
// bursts of up to burst; see [WithRateLimit] for out-of-range values.
func New(perSecond float64, burst int) *Limiter {
	limit := rate.Limit(perSecond)
	if !(perSecond > 0) || math.IsInf(perSecond, 1) {
		limit = rate.Inf
	}
	return &Limiter{limit: limit, burst: max(burst, 1), max: DefaultMaxHosts, m: make(map[string]*bucket)}
}

// errNever is the error of a request that no wait would let through.
var errNever = errors.New("ratelimit: the limit lets no request through")

// Wait takes a token from req's host's bucket, waiting for one until ctx
// ends. A wait that would end after ctx's deadline is not started: Wait
// returns a [*resilient.ThrottledError] at once, with the wait it would
// have needed, and gives the token back.
func (l *Limiter) Wait(ctx context.Context, req *http.Request) error {
	if l == nil || l.limit == rate.Inf || l.limit == 0 { // nil and the zero Limiter set no limit
		return nil
	}
	key := resilient.HostKey(req)
	r := l.host(key).Reserve()
	if !r.OK() {
		return &resilient.ThrottledError{Key: key, Err: errNever}
	}
	d := r.Delay()
	if d <= 0 {
		return nil
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Add(d).Before(dl) {
		r.Cancel()
		return &resilient.ThrottledError{Key: key, RetryAfter: d}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return context.Cause(ctx)
	}
}

// host returns the bucket of key, creating it if needed.
func (l *Limiter) host(key string) *rate.Limiter {
	l.mu.Lock()
	b, ok := l.m[key]
	if !ok {
		if len(l.m) >= l.max {
			l.shrink()
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.m[key] = b
	}
	l.mu.Unlock()
	b.used.Store(l.tick.Add(1))
	return b.lim
}

// shrink drops the least recently used buckets down to three quarters of
// max. Called with mu held. A dropped host starts again with a full
// bucket, which only lets a burst through early.
func (l *Limiter) shrink() {
	type aged struct {
		k    string
		used int64
	}
	all := make([]aged, 0, len(l.m))
	for k, b := range l.m {
		all = append(all, aged{k, b.used.Load()})
	}
	slices.SortFunc(all, func(a, b aged) int { return cmp.Compare(a.used, b.used) })
	for _, a := range all[:len(all)-l.max*3/4] {
		delete(l.m, a.k)
	}
}
