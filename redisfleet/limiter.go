package redisfleet

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/resilient-go/resilient"
)

// Quota is a rate that the replicas of a fleet share: Limit requests per
// Per to each key, all replicas together.
type Quota struct {
	// Limit is how many requests the fleet may send per Per to one key.
	// 0 or less means no quota: every request goes at once.
	Limit float64
	// Per is the period of Limit; default one second.
	Per time.Duration
	// Key names the quota of a request; default [resilient.HostKey], a
	// quota per host. Requests whose keys are equal share one quota.
	Key func(*http.Request) string
	// Replicas is how many replicas a replica assumes there are before it
	// has heard from Redis: its fallback share is Limit/Replicas. Once it
	// has, the fallback share is Limit divided by the replicas it last
	// saw. Default 1.
	Replicas int
	// Name tells quotas apart in Redis: two quotas of one fleet with the
	// same key need different names. Default "default".
	Name string
}

// Limiter is a [resilient.Limiter] that keeps a [Quota] across the
// replicas of a fleet. Each replica leases a share of the quota from Redis
// and spends it from a local token bucket, so a request never waits for
// Redis: the shares are renewed in the background, every quarter of the
// lease period, and follow each replica's demand (max-min fair: a replica
// that wants less than an equal share leaves the rest to the others).
// While Redis is unreachable, a replica keeps its lease until it would
// have expired, then spends its fallback share (see [Quota.Replicas]).
//
// Wait follows [resilient.Limiter]: it waits for the request's token
// within the context, and fails at once with a [*resilient.ThrottledError]
// when that wait would outlast the context's deadline.
type Limiter struct {
	f    *Fleet
	q    Quota
	rate float64 // Limit per second

	mu     sync.RWMutex
	shares map[string]*share
}

var _ resilient.Limiter = (*Limiter)(nil)

// share is this replica's part of the quota of one key.
type share struct {
	key string // the quota key, for errors
	b   *bucket
	// Written by the renewal loop only:
	leased  bool      // a lease was granted once
	expires time.Time // when the last lease granted runs out
	members int       // replicas seen at the last renewal
	granted float64   // the share of the last lease, per second
	used    time.Time // when it was last renewed with requests
}

// Limiter returns a limiter that keeps q across the fleet. Every replica
// must ask for the same quotas.
func (f *Fleet) Limiter(q Quota) *Limiter {
	if q.Per <= 0 {
		q.Per = time.Second
	}
	if q.Key == nil {
		q.Key = resilient.HostKey
	}
	if q.Replicas <= 0 {
		q.Replicas = 1
	}
	if q.Name == "" {
		q.Name = "default"
	}
	l := &Limiter{f: f, q: q, rate: q.Limit / q.Per.Seconds(), shares: make(map[string]*share)}
	f.mu.Lock()
	f.limiters = append(f.limiters, l)
	f.mu.Unlock()
	return l
}

// Wait takes one request of req's quota; see [Limiter].
func (l *Limiter) Wait(ctx context.Context, req *http.Request) error {
	if !(l.rate > 0) {
		return nil
	}
	key := l.q.Key(req)
	l.mu.RLock()
	s := l.shares[key]
	l.mu.RUnlock()
	if s == nil {
		s = l.newShare(key)
	}
	return s.b.wait(ctx, key, l.f.renewSoon)
}

// newShare returns the share of key, made on first use: it starts with
// nothing leased, and asks the renewal loop for a lease at once.
func (l *Limiter) newShare(key string) *share {
	l.mu.Lock()
	s := l.shares[key]
	if s == nil {
		s = &share{key: key, b: newBucket(), members: l.q.Replicas, used: time.Now()}
		if l.f.rdb == nil || l.f.closed.Load() { // no lease will come
			s.b.setRate(l.fallback(s))
		}
		l.shares[key] = s
	}
	l.mu.Unlock()
	l.f.fresh.Store(true)
	l.f.renewSoon()
	return s
}

// fallback is the share of s while Redis does not answer.
func (l *Limiter) fallback(s *share) float64 {
	return l.rate / float64(max(1, s.members))
}

// list returns the shares of l.
func (l *Limiter) list() []*share {
	l.mu.RLock()
	defer l.mu.RUnlock()
	out := make([]*share, 0, len(l.shares))
	for _, s := range l.shares {
		out = append(out, s)
	}
	return out
}

// drop forgets the share of key, unused for long.
func (l *Limiter) drop(key string) {
	l.mu.Lock()
	delete(l.shares, key)
	l.mu.Unlock()
}
