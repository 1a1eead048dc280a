package resilient

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrBodyNotReplayable is returned by the retry layer, wrapped in a
// [*RetryError], when a retry was due after a transport error but the
// request body could not be produced again (its GetBody failed, or the
// caller's body stalled); the error of the previous attempt is wrapped too.
// When the previous attempt ended with a response, that response is handed
// back instead.
var ErrBodyNotReplayable = errors.New("resilient: request body cannot be replayed")

// ErrNilResponse is returned when the base RoundTripper broke its contract
// by returning neither a response nor an error, as net/http's Client also
// reports it. It is never retried and never judged by a circuit breaker.
var ErrNilResponse = errors.New("resilient: RoundTripper returned a nil *http.Response with a nil error")

// errNoTimeLeft is wrapped by the *TimeoutError of an attempt that was not
// sent because its deadline had passed already.
var errNoTimeLeft = errors.New("no time left for another attempt")

// errRequestCanceled is the cause of a call whose Request.Cancel closed.
var errRequestCanceled = errors.New("resilient: request canceled")

// errPrefix starts the text of every error of this package.
const errPrefix = "resilient: "

// bare is err's text without the package's prefix, for an error of this
// package that wraps err and says the prefix once for both:
// "resilient: 2 attempts: attempt timeout of 1s exceeded", not
// "resilient: 2 attempts: resilient: attempt timeout of 1s exceeded".
func bare(err error) string {
	if err == nil {
		return "<nil>"
	}
	return strings.TrimPrefix(err.Error(), errPrefix)
}

// quoted wraps err for the text of another error of this package, which
// says the prefix already: fmt.Errorf("resilient: waiting: %w", quote(err)).
// It reads as err's text without the prefix, and unwraps to err.
type quoted struct{ err error }

// quote returns err as a quoted error, or nil.
func quote(err error) error {
	if err == nil {
		return nil
	}
	return &quoted{err}
}

func (q *quoted) Error() string { return bare(q.err) }
func (q *quoted) Unwrap() error { return q.err }

// RetryError is the error the retry layer returns when a call ends in a
// transport error. It says how many attempts were made and wraps the error of
// the last one, so errors.Is and errors.As still find the cause (for example
// syscall.ECONNREFUSED or context.Canceled).
//
// A call that ends with an HTTP response never returns a RetryError: the last
// response is handed back with a nil error, whatever its status.
//
// Its text, like that of every error of this package, says "resilient:"
// once, and what the package adds to it holds no part of the request's URL
// but the scheme and host (an error of the base transport is quoted as it
// is; net/http's hold no URL). http.Client wraps it in a *url.Error whose own text adds the method and
// the URL as the caller gave it, query included (the Client masks only a
// password): a query that carries a secret (?api_key=...) is then in that
// text. The Client does this after the RoundTripper has returned, out of
// its reach; to log the error without the URL, log the *url.Error's Err
// (errors.Unwrap) with a URL of your own choosing.
type RetryError struct {
	// Attempts is the number of attempts that were sent. An attempt refused
	// by the circuit breaker, or not started for lack of time, was not
	// sent and is not counted, so Attempts is 0 when the first attempt was
	// refused.
	Attempts int
	// Err is the error that ended the call.
	Err error
}

// Error implements the error interface.
func (e *RetryError) Error() string {
	if e.Attempts == 0 {
		return "resilient: no attempt sent: " + bare(e.Err)
	}
	if e.Attempts == 1 {
		return "resilient: 1 attempt: " + bare(e.Err)
	}
	return fmt.Sprintf("resilient: %d attempts: %s", e.Attempts, bare(e.Err))
}

// Unwrap returns the error of the last attempt.
func (e *RetryError) Unwrap() error { return e.Err }

// Timeout reports whether the last attempt ended on a timeout, so that
// *url.Error.Timeout and code written for net.Error see through the retries.
func (e *RetryError) Timeout() bool {
	var ne interface{ Timeout() bool }
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// TimeoutScope tells which timeout of the stack fired.
type TimeoutScope int

const (
	// ScopeAttempt is the per-attempt timeout set by [WithAttemptTimeout].
	ScopeAttempt TimeoutScope = iota + 1
	// ScopeTotal is the whole-call timeout set by [WithTotalTimeout].
	ScopeTotal
)

// String returns "attempt" or "total".
func (s TimeoutScope) String() string {
	switch s {
	case ScopeAttempt:
		return "attempt"
	case ScopeTotal:
		return "total"
	}
	return fmt.Sprintf("TimeoutScope(%d)", int(s))
}

// TimeoutError reports that a timeout of the stack fired, while waiting for
// the response headers or while reading the response body.
//
// errors.Is(err, context.DeadlineExceeded) is true for it, and it implements
// net.Error with Timeout() returning true, so code written for net/http's own
// timeouts keeps working.
type TimeoutError struct {
	// Scope says which timeout fired.
	Scope TimeoutScope
	// After is the configured duration of that timeout.
	After time.Duration
	// Err is the error the transport or body returned when the deadline hit.
	Err error
}

// Error implements the error interface.
func (e *TimeoutError) Error() string {
	var cause *deadlineCause
	if e.Err == nil || errors.As(e.Err, &cause) && e.Err.Error() == cause.Error() {
		return fmt.Sprintf("resilient: %s timeout of %v exceeded", e.Scope, e.After)
	}
	return fmt.Sprintf("resilient: %s timeout of %v exceeded: %s", e.Scope, e.After, bare(e.Err))
}

// Unwrap returns the underlying error.
func (e *TimeoutError) Unwrap() error { return e.Err }

// Is reports true for context.DeadlineExceeded.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Timeout reports true: it makes *TimeoutError a net.Error.
func (e *TimeoutError) Timeout() bool { return true }

// Temporary reports true for an attempt timeout, which the retry layer retries.
// It is part of the net.Error interface; prefer Scope.
func (e *TimeoutError) Temporary() bool { return e.Scope == ScopeAttempt }

// ErrThrottled is the error of a call that was not sent because the host
// asked clients to slow down (a 429 or 503 with Retry-After, or RateLimit
// fields saying the quota is used up) or a client-side rate limit ran out,
// and waiting would have outlived the call's deadline or MaxRetryAfter.
// errors.Is finds it through *url.Error and [*RetryError]; errors.As with a
// [*ThrottledError] gives the host and the time left.
var ErrThrottled = errors.New("resilient: throttled")

// ThrottledError is returned for a call that the throttle gate or a rate
// limit refused at once, without sending it.
type ThrottledError struct {
	// Key names the host: scheme, host and port, as the breaker's key.
	Key string
	// RetryAfter is how long until the host takes requests again, as far
	// as the client knows; zero when unknown.
	RetryAfter time.Duration
	// Err is the limiter's own error, if any.
	Err error
}

// Error implements the error interface.
func (e *ThrottledError) Error() string {
	s := "resilient: throttled"
	if e.Key != "" {
		s += " by " + e.Key
	}
	if e.RetryAfter > 0 {
		s += fmt.Sprintf(", open again in %v", e.RetryAfter.Round(time.Millisecond))
	}
	if e.Err != nil {
		s += ": " + bare(e.Err)
	}
	return s
}

// Is reports true for ErrThrottled.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Unwrap returns the limiter's error, if any.
func (e *ThrottledError) Unwrap() error { return e.Err }

// ErrCircuitOpen is the error of a request refused by an open (or busy
// half-open) circuit breaker. errors.Is finds it through *url.Error and
// [*RetryError]; errors.As with a [*CircuitOpenError] gives the details.
var ErrCircuitOpen = errors.New("resilient: circuit breaker is open")
