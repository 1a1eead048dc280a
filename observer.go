package resilient

import (
	"context"
	"net/http"
	"time"
)

// EventKind says what an [Event] reports.
type EventKind int

const (
	// EventAttempt: one attempt ended, with a response or an error. When
	// another attempt follows, Wait and WaitReason say after how long and why.
	EventAttempt EventKind = iota + 1
	// EventDone: the call ended; Attempt is the number of attempts made.
	EventDone
	// EventBreaker: a circuit breaker changed state.
	EventBreaker
	// EventBudgetExhausted: a retry was due but the client's retry budget
	// was spent, so the call ends after this attempt.
	EventBudgetExhausted
)

// String returns "attempt", "done", "breaker" or "budget exhausted".
func (k EventKind) String() string {
	switch k {
	case EventAttempt:
		return "attempt"
	case EventDone:
		return "done"
	case EventBreaker:
		return "breaker"
	case EventBudgetExhausted:
		return "budget exhausted"
	}
	return "unknown"
}

// Event is what the stack hands to an observer ([WithObserver]) and writes
// to the log ([WithLogger]): a plain struct, so that metrics (Prometheus,
// OpenTelemetry) can be built outside the library.
type Event struct {
	Kind EventKind
	// Request is the caller's request, for labels (method, host). It must
	// not be changed; its URL and headers may hold secrets.
	Request *http.Request
	// Attempt is the attempt's number (1 for the first) or, for
	// EventDone, the number of attempts made; MaxAttempts is the policy's.
	Attempt, MaxAttempts int
	// StatusCode is the response's status, 0 when Err is set.
	StatusCode int
	// Err is the attempt's or the call's error.
	Err error
	// Duration is the attempt's, or for EventDone the whole call's.
	Duration time.Duration
	// Wait is the pause before the next attempt, and WaitReason why:
	// "backoff" or "retry-after". Both are zero when no attempt follows.
	Wait       time.Duration
	WaitReason string
	// Reason says why an EventAttempt's attempt was sent, when it was not
	// the call's first attempt nor a retry: "hedge" for a hedge
	// ([WithHedging]), sent while an earlier attempt was still in flight.
	// A hedge that lost to another attempt ends with an error saying so.
	Reason string
	// BreakerKey, From and To describe an EventBreaker.
	BreakerKey string
	From, To   State
}

// WithObserver hands every attempt, retry decision, final outcome and
// breaker transition to f, synchronously: f must return quickly and must be
// safe for concurrent use. Several observers may be given; each is called.
// A nil f is ignored. Without an observer or logger no event is built.
func WithObserver(f func(ctx context.Context, e Event)) Option {
	return optionFunc(func(c *config) {
		if f != nil {
			c.observers = append(c.observers, f)
		}
	})
}

// observer fans events out; a nil *observer does nothing and costs nothing.
type observer struct {
	fns []func(context.Context, Event)
	// quiet, when set, reports that no one listens for a call with this
	// context (only loggers, all disabled), so that it need not be observed.
	quiet func(context.Context) bool
}

func newObserver(fns []func(context.Context, Event), quiet func(context.Context) bool) *observer {
	if len(fns) == 0 {
		return nil
	}
	return &observer{fns: fns, quiet: quiet}
}

// forCall returns o, or nil when no one listens for this call.
func (o *observer) forCall(ctx context.Context) *observer {
	if o == nil || o.quiet == nil || !o.quiet(ctx) {
		return o
	}
	return nil
}

func (o *observer) emit(ctx context.Context, e Event) {
	for _, f := range o.fns {
		f(ctx, e)
	}
}

// now returns the time when there is an observer to tell it to.
func (o *observer) now() time.Time {
	if o == nil {
		return time.Time{}
	}
	return time.Now()
}

func (o *observer) attempt(req *http.Request, n, max int, began, ended time.Time, resp *http.Response, err error, wait time.Duration, why, reason string) {
	if o == nil {
		return
	}
	e := Event{Kind: EventAttempt, Request: req, Attempt: n, MaxAttempts: max, Err: err,
		Duration: ended.Sub(began), Wait: wait, WaitReason: why, Reason: reason}
	if resp != nil {
		e.StatusCode = resp.StatusCode
	}
	o.emit(req.Context(), e)
}

func (o *observer) done(req *http.Request, n, max int, began, ended time.Time, resp *http.Response, err error) {
	if o == nil {
		return
	}
	e := Event{Kind: EventDone, Request: req, Attempt: n, MaxAttempts: max, Err: err, Duration: ended.Sub(began)}
	if resp != nil {
		e.StatusCode = resp.StatusCode
	}
	o.emit(req.Context(), e)
}

func (o *observer) breaker(key string, from, to State) {
	if o == nil {
		return
	}
	o.emit(context.Background(), Event{Kind: EventBreaker, BreakerKey: key, From: from, To: to})
}

func (o *observer) budgetExhausted(req *http.Request, n, max int) {
	if o == nil {
		return
	}
	o.emit(req.Context(), Event{Kind: EventBudgetExhausted, Request: req, Attempt: n, MaxAttempts: max})
}
