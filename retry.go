package resilient

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Defaults of [RetryPolicy]; docs/design.md says why.
const (
	DefaultMaxAttempts     = 3
	DefaultInitialDelay    = 100 * time.Millisecond
	DefaultMaxDelay        = 10 * time.Second
	DefaultMaxRetryAfter   = 30 * time.Second
	DefaultMultiplier      = 2.0
	DefaultMaxBufferedBody = 1 << 20
)

// Jitter chooses how a backoff delay is randomised.
type Jitter int

const (
	// JitterFull waits a random time between 0 and the exponential delay
	// ("full jitter"); it spreads the retries of many clients best. Default.
	JitterFull Jitter = iota
	// JitterEqual waits half the exponential delay plus a random time up to
	// the other half.
	JitterEqual
	// JitterNone waits exactly the exponential delay.
	JitterNone
)

// RetryPolicy configures the retry layer. The zero value is the default
// policy; every zero or negative field means its documented default.
type RetryPolicy struct {
	// MaxAttempts is the number of attempts including the first; 1 disables
	// retries. Default 3.
	MaxAttempts int
	// InitialDelay is the exponential delay before the first retry, before
	// jitter. Default 100 ms.
	InitialDelay time.Duration
	// MaxDelay caps one backoff delay, jitter included: every delay is
	// between 0 and MaxDelay, however large the Multiplier or the attempt
	// number. Default 10 s; never below InitialDelay.
	MaxDelay time.Duration
	// Multiplier is the growth of the delay from one retry to the next.
	// Values of 1 or less, NaN and infinities mean the default, 2.
	Multiplier float64
	// Jitter randomises each delay. Default JitterFull; an unknown value
	// means JitterFull too.
	Jitter Jitter
	// MaxRetryAfter is the longest wait asked by a Retry-After header that
	// is honoured. A response asking for more is handed back at once, as is
	// one whose wait would end after the context's deadline. Default 30 s.
	MaxRetryAfter time.Duration
	// MaxBufferedBody is how many bytes of a request body that has no
	// GetBody are kept in memory so that it can be sent again. Nothing is
	// read up front: the body is recorded while the first attempt streams
	// it. A longer body (or one whose ContentLength says so) is sent once
	// and its call is not retried. Requests made with http.NewRequest from a
	// bytes.Buffer, bytes.Reader or strings.Reader have GetBody and are
	// never copied. Default 1 MiB.
	MaxBufferedBody int64
	// Backoff, when set, replaces InitialDelay, MaxDelay, Multiplier and
	// Jitter: it is called once per call, when a first retry is needed, and
	// its NextBackOff gives each delay; backoff.Stop ends the retries.
	Backoff func() backoff.BackOff
	// RetryIf, when set, replaces [IsRetryable] to decide which responses
	// and errors are worth another attempt. The other rules still hold: the
	// caller's cancelled context is never retried, and a non-idempotent
	// request is retried only when it carries an Idempotency-Key or when
	// the server provably never processed it.
	RetryIf func(resp *http.Response, err error) bool
	// Budget bounds the retries of the whole client; on by default. See
	// [RetryBudget].
	Budget RetryBudget
}

// WithRetry adds the retry layer: failed attempts that are worth repeating
// (see [IsRetryable]) are sent again after an exponential, jittered backoff,
// or after the wait a Retry-After header asks for.
//
// When the attempts run out on a response, the last response is returned
// with its body intact and a nil error. When they run out on an error, a
// [*RetryError] wrapping the last error is returned.
func WithRetry(p RetryPolicy) Option {
	return optionFunc(func(c *config) { c.retry = &p })
}

// normalized returns p with every default filled in.
func (p RetryPolicy) normalized() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.InitialDelay <= 0 {
		p.InitialDelay = DefaultInitialDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	p.MaxDelay = max(p.MaxDelay, p.InitialDelay)
	p.Multiplier = multiplier(p.Multiplier)
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if p.MaxBufferedBody <= 0 {
		p.MaxBufferedBody = DefaultMaxBufferedBody
	}
	if p.RetryIf == nil {
		p.RetryIf = IsRetryable
	}
	return p
}

// delay is the backoff before retry number n (1 for the first retry),
// jitter included: always within [0, MaxDelay], whatever the policy.
func (p *RetryPolicy) delay(n int) time.Duration {
	ceil := backoffCeil(p.InitialDelay, p.MaxDelay, multiplier(p.Multiplier), n)
	if ceil <= 0 {
		return 0
	}
	switch p.Jitter {
	case JitterNone:
		return ceil
	case JitterEqual:
		half := ceil / 2
		return half + time.Duration(rand.Int64N(int64(ceil-half)+1))
	default:
		return time.Duration(rand.Int64N(int64(ceil))) // [0, ceil)
	}
}

// backoffCeil is initial × m^(n-1), capped at limit. The power may be huge
// or +Inf as a float; it is compared with the cap before it becomes a
// Duration, so the product can never overflow into a negative wait.
func backoffCeil(initial, limit time.Duration, m float64, n int) time.Duration {
	initial, limit = max(initial, 0), max(limit, 0)
	if n <= 1 || initial >= limit {
		return min(initial, limit)
	}
	d := float64(initial) * math.Pow(m, float64(n-1))
	if !(d < float64(limit)) { // +Inf and NaN too
		return limit
	}
	return min(time.Duration(d), limit)
}

// multiplier is m when it is a finite number above 1, else the default.
func multiplier(m float64) float64 {
	if m > 1 && !math.IsInf(m, 1) {
		return m
	}
	return DefaultMultiplier
}

// fits reports whether a wait of d ends before ctx's deadline and before
// end, when end is set.
func fits(ctx context.Context, end time.Time, d time.Duration) bool {
	until := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && !until.Before(dl) {
		return false
	}
	return end.IsZero() || until.Before(end)
}

// joinErr wraps err and, when there is one, other too, so that neither is
// lost to errors.Is.
func joinErr(err, other error) error {
	if other == nil {
		return err
	}
	return fmt.Errorf("%w (and: %w)", err, quote(other))
}
