package redisfleet

import (
	"context"
	"sync"
	"time"

	"github.com/resilient-go/resilient"
)

// burstWindow is how much of its rate a bucket may spend at once: a
// replica's burst is its rate over 50 ms, at least one request, so that
// the bursts of all replicas together stay a twentieth of the quota.
const burstWindow = 50 * time.Millisecond

// bucket is a token bucket whose rate changes with the lease: a request
// takes a token, or reserves the next one and waits for it, as
// golang.org/x/time/rate does; when the rate changes, the waiting
// requests reserve again at the new rate. With a rate of 0 (no share
// leased yet) a request waits for the next rate.
type bucket struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	tokens  float64 // negative: reserved by waiting requests
	last    time.Time
	changed chan struct{} // closed when the rate changes
	// waited is set when a request had to wait since the last renewal:
	// the replica wants more than its share.
	waited  bool
	waiting int   // requests waiting now for a token they reserved
	held    int   // requests waiting now for a rate above 0
	calls   int64 // requests since the last renewal
}

func newBucket() *bucket {
	return &bucket{changed: make(chan struct{})}
}

// advance adds the tokens earned since last. Called with mu held.
func (b *bucket) advance(now time.Time) {
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

// setRate sets the rate to r per second, keeping the tokens earned and
// reserved so far.
func (b *bucket) setRate(r float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if r == b.rate {
		return
	}
	b.advance(time.Now())
	b.rate = r
	b.burst = max(1, r*burstWindow.Seconds())
	// The waiting requests reserve again at the new rate: their
	// reservations are cancelled here, all at once, so that they queue up
	// again one behind the other.
	b.tokens = min(b.tokens+float64(b.waiting), b.burst)
	b.waiting = 0
	close(b.changed)
	b.changed = make(chan struct{})
}

// usage returns the requests since the last call and whether any had to
// wait, and starts counting again.
func (b *bucket) usage() (calls int64, waited bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	calls, waited = b.calls, b.waited || b.waiting > 0 || b.held > 0
	b.calls, b.waited = 0, false
	return calls, waited
}

// wait takes a token for one request, waiting for it within ctx. A wait
// that cannot end before ctx's deadline fails at once with a
// *resilient.ThrottledError for key, and a wait that ctx ends returns its
// error (the client layer tells a deadline from a cancellation); starved is called when the request
// waits, so that the lease is renewed sooner.
func (b *bucket) wait(ctx context.Context, key string, starved func()) error {
	counted := false
	for {
		b.mu.Lock()
		if !counted {
			b.calls++
			counted = true
		}
		now := time.Now()
		b.advance(now)
		if b.rate <= 0 {
			changed := b.changed
			b.waited = true
			b.held++
			b.mu.Unlock()
			starved()
			var err error
			select {
			case <-changed:
			case <-ctx.Done():
				err = ctx.Err()
			}
			b.mu.Lock()
			b.held--
			b.mu.Unlock()
			if err != nil {
				return err
			}
			continue
		}
		b.tokens--
		if b.tokens >= 0 {
			b.mu.Unlock()
			return nil
		}
		d := time.Duration(-b.tokens / b.rate * float64(time.Second))
		if dl, ok := ctx.Deadline(); ok && now.Add(d).After(dl) {
			b.tokens++
			b.mu.Unlock()
			return &resilient.ThrottledError{Key: key, RetryAfter: d}
		}
		b.waited = true
		b.waiting++
		changed := b.changed
		b.mu.Unlock()
		if d > burstWindow {
			starved()
		}
		t := time.NewTimer(d)
		select {
		case <-t.C:
			b.done(changed, false)
			return nil
		case <-changed: // a new rate cancelled the reservation: reserve again
			t.Stop()
		case <-ctx.Done():
			t.Stop()
			b.done(changed, true)
			return ctx.Err()
		}
	}
}

// done ends a wait that reserved a token while the rate's channel was
// changed. A request that goes takes a token now if a new rate cancelled
// its reservation meanwhile; with giveUp, a token still reserved is given
// back.
func (b *bucket) done(changed chan struct{}, giveUp bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.changed != changed: // cancelled by setRate already
		if !giveUp {
			b.tokens--
		}
	case giveUp:
		b.waiting--
		b.tokens = min(b.burst, b.tokens+1)
	default:
		b.waiting--
	}
}
