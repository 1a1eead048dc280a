package redisfleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient"
)

// Defaults of the options.
const (
	DefaultPrefix      = "resilient:fleet"
	DefaultLeasePeriod = 3 * time.Second
	DefaultTimeout     = 100 * time.Millisecond
)

// Fleet is one replica's seat in the fleet: it leases this replica's share
// of each [Quota], and passes the gates and breakers that this replica's
// clients close and open to the other replicas, through one Redis. Make
// one per process with [New], give its [Fleet.Limiter] to
// [resilient.WithLimiter] and the Fleet itself to [resilient.WithFleet],
// and Close it when the process ends:
//
//	f := redisfleet.New(rdb, redisfleet.WithLogger(logger))
//	defer f.Close()
//	client := resilient.New(resilient.Recommended(),
//		resilient.WithLimiter(f.Limiter(redisfleet.Quota{Limit: 100})),
//		resilient.WithFleet(f))
//
// A Fleet is safe for concurrent use. Every replica must use the same
// prefix and the same quotas.
type Fleet struct {
	rdb     redis.UniversalClient
	prefix  string
	id      string // this replica's name in Redis
	lease   time.Duration
	timeout time.Duration
	log     *slog.Logger

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	down   atomic.Bool // Redis failed last: logged once, until it answers again

	opsMu   sync.Mutex
	ops     sync.WaitGroup // operations of do still running
	stopped bool           // set by Close: do starts no more operations

	mu       sync.Mutex
	members  []*resilient.FleetMember
	limiters []*Limiter
	probes   map[string]probeNews        // per breaker key: what the fleet knows of its probe
	out      chan string                 // news to publish
	kick     chan struct{}               // asks the lease loop for a renewal now
	fresh    atomic.Bool                 // a share waits for its first lease
	heard    func(kind byte, key string) // for tests: called after news is acted on
	listened chan struct{}               // closed once the subscription is sent
}

// Option configures a [Fleet].
type Option interface{ apply(*Fleet) }

type optionFunc func(*Fleet)

func (o optionFunc) apply(f *Fleet) { o(f) }

// WithPrefix sets the prefix of the Redis keys and of the pub/sub channel;
// default [DefaultPrefix]. Replicas that share quotas and news use the
// same prefix.
func WithPrefix(p string) Option {
	return optionFunc(func(f *Fleet) {
		if p != "" {
			f.prefix = p
		}
	})
}

// WithLeasePeriod sets how long a replica's share of a quota lasts without
// a renewal: replicas renew every quarter of it, and the share of a
// replica that died returns to the others within it. Default
// [DefaultLeasePeriod]; values under 100 ms mean 100 ms.
func WithLeasePeriod(d time.Duration) Option {
	return optionFunc(func(f *Fleet) {
		if d > 0 {
			f.lease = max(d, 100*time.Millisecond)
		}
	})
}

// WithTimeout bounds each Redis operation; default [DefaultTimeout]. An
// operation that fails or runs out of time makes the replica fall back to
// its local share until Redis answers again.
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(f *Fleet) {
		if d > 0 {
			f.timeout = d
		}
	})
}

// WithLogger sets the logger that says, once each time, that Redis is
// unreachable and that it answers again. Default: none.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(f *Fleet) {
		if l != nil {
			f.log = l
		}
	})
}

// WithName names this replica in Redis; default a random name. Two
// replicas must not share a name.
func WithName(name string) Option {
	return optionFunc(func(f *Fleet) {
		if name != "" {
			f.id = name
		}
	})
}

// New returns this replica's seat in the fleet of the replicas that use
// rdb's Redis with the same prefix, and starts its background work: the
// renewal of leases, the publication of news and the subscription to the
// others'. rdb may be a client, a cluster client or a failover client.
// New does not wait for Redis: until Redis answers, each quota runs on
// its local fallback share. A nil rdb gives a Fleet that is always on its
// fallback.
func New(rdb redis.UniversalClient, opts ...Option) *Fleet {
	f := &Fleet{
		rdb: rdb, prefix: DefaultPrefix, lease: DefaultLeasePeriod, timeout: DefaultTimeout,
		log:    slog.New(slog.DiscardHandler),
		probes: make(map[string]probeNews),
		out:    make(chan string, 256),
		kick:   make(chan struct{}, 1),

		listened: make(chan struct{}),
	}
	for _, o := range opts {
		if o != nil {
			o.apply(f)
		}
	}
	if f.id == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		f.id = hex.EncodeToString(b[:])
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	if rdb != nil {
		f.wg.Add(3)
		go f.renewLoop()
		go f.publishLoop()
		go f.subscribeLoop()
	}
	return f
}

// Name returns this replica's name in Redis.
func (f *Fleet) Name() string { return f.id }

// Close stops the background work and gives this replica's shares back to
// the others at once, within one Redis timeout. The limiters keep working
// on their last shares, and a key first seen after Close gets its
// fallback share. Close is safe to call more than once.
func (f *Fleet) Close() error {
	if !f.closed.CompareAndSwap(false, true) {
		return nil
	}
	f.cancel()
	f.wg.Wait()
	if f.rdb == nil {
		return nil
	}
	err := f.leave()
	f.opsMu.Lock()
	f.stopped = true
	f.opsMu.Unlock()
	f.ops.Wait()
	return err
}

// Errors of operations that were not sent.
var (
	errNoRedis = errors.New("redisfleet: no Redis client")
	errClosed  = errors.New("redisfleet: fleet closed")
)

// do runs op under the fleet's timeout, and returns when that ends even if
// op does not honour its context (a client without ContextTimeoutEnabled):
// op then finishes in the background, and Close waits for it.
func (f *Fleet) do(ctx context.Context, op func(context.Context) error) error {
	if f.rdb == nil {
		return errNoRedis
	}
	f.opsMu.Lock()
	if f.stopped {
		f.opsMu.Unlock()
		return errClosed
	}
	f.ops.Add(1)
	f.opsMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer f.ops.Done()
		done <- op(ctx)
	}()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	f.report(err)
	return err
}

// report logs the first failure of Redis after a success, and the first
// success after a failure.
func (f *Fleet) report(err error) {
	switch {
	case err == nil:
		if f.down.CompareAndSwap(true, false) {
			f.log.Info("redisfleet: Redis answers again; rejoined the fleet", "replica", f.id)
		}
	case errors.Is(err, redis.Nil), errors.Is(err, errClosed), f.ctx.Err() != nil:
	default:
		if f.down.CompareAndSwap(false, true) {
			f.log.Warn("redisfleet: Redis unreachable; falling back to local shares, gates and breakers",
				"replica", f.id, "err", err)
		}
	}
}

// Degraded reports whether the last Redis operation failed: the replica
// then runs on its fallback shares and its own gates and breakers.
func (f *Fleet) Degraded() bool { return f.down.Load() || f.rdb == nil }

// key is the Redis key or channel named by parts under the prefix.
func (f *Fleet) key(parts ...string) string {
	k := f.prefix
	for _, p := range parts {
		k += ":" + p
	}
	return k
}
