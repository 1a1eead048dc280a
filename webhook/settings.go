package webhook

import (
	"context"
	"net/http"
	"time"
)

// Defaults of [Handler] and [Receiver].
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultLease        = 5 * time.Minute
	DefaultKeep         = 72 * time.Hour
	DefaultStoreTimeout = 5 * time.Second
	DefaultRetryAfter   = 5 * time.Second
	DefaultReadTimeout  = 10 * time.Second
)

// HandlerSettings are the values of the handler options, defaults filled
// in, as [Receiver.Settings] returns them.
type HandlerSettings struct {
	// MaxBodyBytes is the largest body accepted ([WithMaxBodyBytes]).
	MaxBodyBytes int64
	// Lease is how long a claim holds before it must be renewed
	// ([WithLease]); lease-based stores only.
	Lease time.Duration
	// Keep is how long a done key is remembered ([WithKeep]).
	Keep time.Duration
	// StoreTimeout bounds each store call ([WithStoreTimeout]).
	StoreTimeout time.Duration
	// RetryAfter is sent with a 503 ([WithRetryAfter]).
	RetryAfter time.Duration
	// ReadTimeout bounds reading the body ([WithReadTimeout]).
	ReadTimeout time.Duration
}

// config is what the handler options set.
type config struct {
	HandlerSettings
	store   Store
	eventID func(http.Header, []byte) string
	onError func(context.Context, Event, error)
}

func newConfig(opts []HandlerOption) config {
	c := config{HandlerSettings: HandlerSettings{
		MaxBodyBytes: DefaultMaxBodyBytes, Lease: DefaultLease, Keep: DefaultKeep,
		StoreTimeout: DefaultStoreTimeout, RetryAfter: DefaultRetryAfter, ReadTimeout: DefaultReadTimeout,
	}}
	for _, o := range opts {
		if o != nil {
			o.applyHandler(&c)
		}
	}
	return c
}

// HandlerOption configures [Handler] and [NewReceiver].
type HandlerOption interface {
	applyHandler(*config)
}

type handlerOptionFunc func(*config)

func (f handlerOptionFunc) applyHandler(c *config) { f(c) }

// WithStore sets the dedupe store (default: a [NewMemoryStore] of
// [DefaultMaxEvents], whose early evictions go to [WithErrorHandler]). A
// nil s, or a nil *MemoryStore, is ignored. Replicas of a receiver need a
// shared store.
func WithStore(s Store) HandlerOption {
	return handlerOptionFunc(func(c *config) {
		if m, ok := s.(*MemoryStore); s == nil || ok && m == nil {
			return
		}
		c.store = s
	})
}

// WithMaxBodyBytes sets the largest body accepted (default 1 MiB; zero or
// negative means the default). A larger body gets 413 and is not read past
// the limit.
func WithMaxBodyBytes(n int64) HandlerOption {
	return handlerOptionFunc(func(c *config) {
		if n > 0 {
			c.MaxBodyBytes = n
		}
	})
}

// WithLease sets how long a delivery's claim lasts without renewal
// (default 5 minutes). [Handler] renews it every third of the lease while
// process runs, so a slow but alive processor keeps it; if the process (or
// the whole replica) dies, a redelivery after the lease processes the
// event. Zero or negative means the default.
func WithLease(d time.Duration) HandlerOption {
	return handlerOptionFunc(func(c *config) {
		if d > 0 {
			c.Lease = d
		}
	})
}

// WithKeep sets how long a processed event is remembered (default 72 h,
// longer than the senders' retry schedules). Zero or negative means the
// default.
func WithKeep(d time.Duration) HandlerOption {
	return handlerOptionFunc(func(c *config) {
		if d > 0 {
			c.Keep = d
		}
	})
}

// WithStoreTimeout bounds each store call (default 5 s; zero or negative
// means the default). A Claim that does not answer in time gets 503 with
// Retry-After; Complete and Release, which run even when the sender hung
// up, stop after it too. The bound works through the context: a Store must
// return when its ctx ends.
func WithStoreTimeout(d time.Duration) HandlerOption {
	return handlerOptionFunc(func(c *config) {
		if d > 0 {
			c.StoreTimeout = d
		}
	})
}

// WithRetryAfter sets the Retry-After of a 503 (default 5 s, rounded up to
// whole seconds; zero or negative means the default).
func WithRetryAfter(d time.Duration) HandlerOption {
	return handlerOptionFunc(func(c *config) {
		if d > 0 {
			c.RetryAfter = d
		}
	})
}

// WithReadTimeout bounds the time to read the body (default 10 s; zero or
// negative means the default): the handler sets a read deadline of its own
// on the connection (http.ResponseController), so a sender trickling its
// body byte by byte gets 408 and frees the goroutine. The deadline is
// lifted once the body is read, so that it cannot cancel process. When the
// http.Server has a ReadTimeout no longer than d, the server's deadline
// (which runs from the start of the request) is left in place instead.
// Behind a ResponseWriter that cannot set deadlines (a wrapper without
// Unwrap), only the server's timeouts bound the read.
func WithReadTimeout(d time.Duration) HandlerOption {
	return handlerOptionFunc(func(c *config) {
		if d > 0 {
			c.ReadTimeout = d
		}
	})
}

// WithEventID sets how the event id is found, for verifiers of your own or
// ids in other places. A nil f or an empty result falls back to the
// default. Its ids are deduplicated together with the body's hash (see
// [Event.Key]).
func WithEventID(f func(h http.Header, body []byte) string) HandlerOption {
	return handlerOptionFunc(func(c *config) { c.eventID = f })
}

// WithErrorHandler sets a function that receives the errors the response
// cannot tell the sender: a store that failed or timed out (a
// [*StoreError]: Claim, Extend, Complete, Release), a lease lost while
// process ran, an early eviction from the default in-memory store (an
// [*EvictionError]). Log them or count them; without it they are dropped.
// f is called from the request's goroutine or the lease renewer, possibly
// concurrently, and must not block long.
func WithErrorHandler(f func(ctx context.Context, e Event, err error)) HandlerOption {
	return handlerOptionFunc(func(c *config) { c.onError = f })
}
