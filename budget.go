package resilient

import (
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of [RetryBudget]; docs/design.md says why.
const (
	DefaultBudgetRatio        = 0.2
	DefaultBudgetMinPerSecond = 1.0
	DefaultBudgetWindow       = 10 * time.Second
	budgetBuckets             = 10
	// minBudgetWindow is the shortest Window: ten buckets of 1 ms.
	minBudgetWindow = budgetBuckets * time.Millisecond
)

// RetryBudget bounds the retries of one client so that they cannot
// multiply an outage: over a sliding Window, retries may be at most Ratio of
// the calls made, plus MinPerSecond retries per second so that a quiet
// client can still retry a failing call. When the budget is spent a call
// ends at once with its last response or error, as if its attempts had run
// out, and the observers and the log say "retry budget exhausted".
//
// The budget is on by default and shared by all calls of one client (one
// [NewTransport], [New] or [Wrap]), across hosts: an outage of one host
// spends it for the others, which is the point when a whole region is down,
// while a single sick host is the circuit breaker's job. The zero value
// means the defaults: 20 % over 10 s plus 1 retry per second (Finagle's and
// Envoy's figures). A retry refused by an open circuit breaker gives its
// budget back.
type RetryBudget struct {
	// Ratio is the share of calls that may be retried; default 0.2. A
	// zero, negative, NaN or infinite value means the default.
	Ratio float64
	// MinPerSecond is the floor: retries per second always allowed,
	// default 1. A zero, negative, NaN or infinite value means the default.
	MinPerSecond float64
	// Window is the sliding window over which calls and retries are
	// counted; default 10 s. It is at least 10 ms: a shorter positive
	// Window means 10 ms.
	Window time.Duration
	// Disabled turns the budget off: every call may use all its attempts.
	Disabled bool
}

// budget is the state of one RetryBudget. A call costs one atomic add; the
// window moves, under a lock, only when a retry asks for budget.
type budget struct {
	ratio, floor float64
	width        time.Duration // of one bucket
	window       time.Duration
	pending      atomic.Int64 // calls not yet put in a bucket

	mu      sync.Mutex
	buckets [budgetBuckets]struct{ calls, retries float64 }
	head    int       // the current bucket
	headAt  time.Time // when the current bucket began
	movedAt time.Time // when pending calls were last put in a bucket
}

// newBudget returns the budget of b, or nil when it is disabled.
func newBudget(b RetryBudget) *budget {
	if b.Disabled {
		return nil
	}
	if !finitePositive(b.Ratio) {
		b.Ratio = DefaultBudgetRatio
	}
	if !finitePositive(b.MinPerSecond) {
		b.MinPerSecond = DefaultBudgetMinPerSecond
	}
	if b.Window <= 0 {
		b.Window = DefaultBudgetWindow
	}
	// The window is cut in budgetBuckets buckets, each at least 1 ms wide:
	// a bucket of zero width would divide by zero in advance.
	b.Window = max(b.Window, minBudgetWindow)
	now := time.Now()
	return &budget{
		ratio:   b.Ratio,
		floor:   b.MinPerSecond * b.Window.Seconds(),
		width:   b.Window / budgetBuckets,
		window:  b.Window,
		headAt:  now,
		movedAt: now,
	}
}

// finitePositive reports whether f is a number above zero, not +Inf.
func finitePositive(f float64) bool { return f > 0 && !math.IsInf(f, 1) }

// call counts one call.
func (b *budget) call() {
	if b != nil {
		b.pending.Add(1)
	}
}

// withdraw takes the budget for one retry, if there is some left.
func (b *budget) withdraw() bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.advance(time.Now())
	var calls, retries float64
	for _, bk := range b.buckets {
		calls += bk.calls
		retries += bk.retries
	}
	if retries+1 > b.ratio*calls+b.floor {
		return false
	}
	b.buckets[b.head].retries++
	return true
}

// refund gives back a retry that was never sent.
func (b *budget) refund() {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if bk := &b.buckets[b.head]; bk.retries >= 1 {
		bk.retries--
	}
}

// advance moves the window to now and puts the pending calls in the
// current bucket. Calls counted over a stretch longer than the window are
// taken as spread evenly over it, so that traffic from long ago does not
// buy retries now.
func (b *budget) advance(now time.Time) {
	if steps := int(now.Sub(b.headAt) / b.width); steps > 0 {
		for i := 0; i < min(steps, budgetBuckets); i++ {
			b.head = (b.head + 1) % budgetBuckets
			b.buckets[b.head] = struct{ calls, retries float64 }{}
		}
		b.headAt = b.headAt.Add(time.Duration(steps) * b.width)
	}
	p := float64(b.pending.Swap(0))
	if elapsed := now.Sub(b.movedAt); elapsed > b.window {
		p *= float64(b.window) / float64(elapsed)
	}
	b.movedAt = now
	b.buckets[b.head].calls += p
}
