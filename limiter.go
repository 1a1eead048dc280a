package resilient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Limiter paces the attempts of a client on the client's side, before the
// host has to say so: a token bucket per host, a shared quota. It is asked
// when an attempt may start and is never told when the attempt ends, so it
// cannot cap how many attempts are in flight at once (a concurrency cap or
// bulkhead needs a release, which this interface does not have: that is
// [WithConcurrencyLimit] and [WithAdaptiveConcurrency]). The package ratelimit
// (github.com/resilient-go/resilient/ratelimit) has one per host on
// golang.org/x/time/rate.
//
// Wait is called before each attempt, retries and hedges included, with a
// context that ends at the call's deadline (the caller's, or
// [WithTotalTimeout]'s when it is earlier) and is cancelled when the
// caller gives up, a closed Request.Cancel included. It returns nil when the
// attempt may go, or an error that ends the call: a wait that cannot end
// before the deadline should fail at once with an error that
// errors.Is(err, [ErrThrottled]), such as a [*ThrottledError] with the
// time left. Wait must be safe for concurrent use and must not change req.
type Limiter interface {
	Wait(ctx context.Context, req *http.Request) error
}

// WithLimiter asks l before every attempt; see [Limiter]. A call the
// limiter refuses ends with the limiter's error (in a [*RetryError]), or
// with the last response when an attempt was made already. A limiter
// whose context reached the call's deadline is reported as
// [ErrThrottled]. A nil l removes the limiter.
func WithLimiter(l Limiter) Option {
	return optionFunc(func(c *config) { c.limiter = l })
}

// admit holds an attempt of req until its host's throttle gate is open
// and the limiter lets it go, within the call's deadline end; it moves now
// to when the attempt may start. The gate is looked at again after the
// limiter's wait, since another call's answer may have closed it
// meanwhile, and only then is one request of the host's quota taken: took
// names it, for a refund when the attempt is not sent after all. Its error
// means the attempt is not sent.
func (t *callTransport) admit(req *http.Request, end time.Time, now *time.Time) (took uint64, err error) {
	waited, took, err := t.gate.await(req, end, t.retry.MaxRetryAfter, t.limiter == nil)
	if err != nil {
		return 0, err
	}
	if t.limiter != nil {
		if err := t.limit(req, end); err != nil {
			return 0, err
		}
		if _, took, err = t.gate.await(req, end, t.retry.MaxRetryAfter, true); err != nil {
			return 0, err
		}
		waited = true
	}
	if waited {
		*now = time.Now()
	}
	return took, nil
}

// mayHedge reports whether a hedge may go to req's host now: its breaker
// is closed and its throttle gate open. It takes nothing of the host's
// quota: a hedge that is not sent after all (no body yet, no budget) must
// not spend it.
func (t *callTransport) mayHedge(req *http.Request) bool {
	if c := t.hedge.closed; c != nil && !c(req) {
		return false
	}
	if canceled(req) {
		return false
	}
	d, _, _, _ := t.gate.look(req, false)
	return d <= 0
}

// admitHedge asks the limiter, if any, for a hedge hreq of the call req,
// then looks at the throttle gate again, since another call's answer may
// have closed it during the limiter's wait, and takes one request of the
// host's quota (took). A hedge never waits for the gate: a closed one
// refuses it with a *ThrottledError.
func (t *callTransport) admitHedge(req, hreq *http.Request, end time.Time) (took uint64, err error) {
	if t.limiter != nil {
		if err := t.limit(hreq, end); err != nil {
			return 0, err
		}
	}
	wait, _, k, took := t.gate.look(req, true)
	if wait > 0 {
		return 0, &ThrottledError{Key: k.String(), RetryAfter: wait}
	}
	return took, nil
}

// limit waits for the limiter, under the call's deadline end (zero: none)
// and until the caller gives up, Request.Cancel included.
func (t *callTransport) limit(req *http.Request, end time.Time) error {
	ctx := req.Context()
	if dl, ok := ctx.Deadline(); !end.IsZero() && (!ok || end.Before(dl)) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	//lint:ignore SA1019 callers that still set it are honoured
	if req.Cancel != nil {
		var stop context.CancelFunc
		ctx, stop = context.WithCancel(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			select {
			case <-req.Cancel: //lint:ignore SA1019 as above
				stop()
			case <-ctx.Done():
			}
		}()
		defer func() { stop(); <-watched }()
	}
	err := t.limiter.Wait(ctx, req)
	switch {
	case err == nil, errors.Is(err, ErrThrottled):
		return err
	case canceled(req):
		return fmt.Errorf("resilient: waiting for the rate limit: %w", quote(cancelErr(req)))
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return &ThrottledError{Err: err}
	}
	return err
}

// defaultKeys names hosts as the circuit breaker does by default.
var defaultKeys breakerSet

// HostKey returns the name the circuit breaker and the throttle gate give
// req's host by default: the lower-case scheme and host, with the port
// unless it is the scheme's default, so that example.com, EXAMPLE.com.
// and example.com:80 are one host. A [Limiter] that works per host can
// key on it.
func HostKey(req *http.Request) string {
	return defaultKeys.key(req).String()
}
