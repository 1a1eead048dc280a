package redisstore

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient/webhook"
)

// DefaultPrefix is put before every key the store writes.
const DefaultPrefix = "webhook:"

// Store is a [webhook.Store] on Redis: one string key per event, named
// prefix + key, whose expiry is Redis's own (PX), so there is nothing to
// prune. Claim is SET NX PX; Extend, Complete and Release are Lua scripts
// that compare the holder's token and change the key only if it matches,
// each on a single key, so the store works on Redis Cluster as on a single
// server. The lease is timed by the Redis server's clock: the clocks of
// the receivers do not matter.
//
// A Store is safe for concurrent use by any number of goroutines and
// receivers sharing one Redis; create it with [New]. Its methods return by
// the time their context is done, cancelled or past its deadline, however
// the client was made (a call abandoned that way finishes in the
// background, bounded by the context's deadline with ContextTimeoutEnabled,
// else by the client's ReadTimeout and MaxRetries).
type Store struct {
	client redis.UniversalClient // nil: every method returns ErrNilClient
	prefix string
}

var _ webhook.Store = (*Store)(nil)

// Option configures [New].
type Option interface {
	apply(*Store)
}

type optionFunc func(*Store)

func (f optionFunc) apply(s *Store) { f(s) }

// WithPrefix sets the string put before every key (default
// [DefaultPrefix], also used when p is empty). Give each application its
// own prefix when they share a Redis. On Redis Cluster, a prefix holding a
// hash tag ({...}) sends every key to one shard.
func WithPrefix(p string) Option {
	return optionFunc(func(s *Store) {
		if p != "" {
			s.prefix = p
		}
	})
}

// New returns a store that keeps its keys in the Redis of client: a
// *redis.Client, *redis.ClusterClient, *redis.Ring or any other
// [redis.UniversalClient]. The client stays the caller's to close. A nil
// client gives a Store whose every method returns [ErrNilClient].
//
// Make the client with ContextTimeoutEnabled: true, so that the deadline
// of each call reaches the socket; without it go-redis waits for a stalled
// server up to its ReadTimeout, and the store can only stop waiting for the
// reply, not stop the wait.
//
// The Redis must not evict keys: set maxmemory-policy noeviction (a full
// Redis then refuses claims, and the handler answers 503) and not a
// volatile-* or allkeys-* policy, which would drop done keys and let
// redeliveries be processed again.
func New(client redis.UniversalClient, opts ...Option) *Store {
	s := &Store{client: client, prefix: DefaultPrefix}
	switch c := client.(type) {
	case *redis.Client:
		if c == nil {
			s.client = nil
		}
	case *redis.ClusterClient:
		if c == nil {
			s.client = nil
		}
	case *redis.Ring:
		if c == nil {
			s.client = nil
		}
	}
	for _, o := range opts {
		if o != nil {
			o.apply(s)
		}
	}
	return s
}

// Claim implements [webhook.Store]: it takes key for lease unless another
// delivery holds it (InProgress) or it is done (Done). The returned claim
// carries a fresh random token; Extend, Complete and Release succeed only
// while the key still holds it. lease is rounded up to whole milliseconds.
func (s *Store) Claim(ctx context.Context, key string, lease time.Duration) (webhook.Claim, error) {
	c := webhook.Claim{Key: key}
	if err := s.check(lease); err != nil {
		return c, fmt.Errorf("webhook: redisstore: claim: %w", err)
	}
	token := rand.Text()
	n, err := s.run(ctx, claimScript, key, claimValue(token), millis(lease))
	if err != nil {
		return c, fmt.Errorf("webhook: redisstore: claim: %w", err)
	}
	switch n {
	case 1:
		c.Token, c.Result = token, webhook.Claimed
	case 2:
		c.Result = webhook.InProgress
	case 3:
		c.Result = webhook.Done
	default:
		return c, ErrUnexpectedValue
	}
	return c, nil
}

// Extend implements [webhook.Store]: it renews c's lease for lease from
// now, or returns [webhook.ErrLeaseLost] when c no longer holds its key.
//
// Extend, Complete and Release run again when their connection fails
// (EOF, a reset, a refused dial, a socket timeout), on top of go-redis's
// own retries, pausing 5 ms, then twice as long each time up to 250 ms,
// until they succeed, fail otherwise, or ctx ends (without a deadline on
// ctx, at most 3 runs). Each changes the key only while c's token holds
// it, so a second run is safe; see the package doc for what each answers
// when the first run's reply was lost.
func (s *Store) Extend(ctx context.Context, c webhook.Claim, lease time.Duration) error {
	if err := s.check(lease); err != nil {
		return fmt.Errorf("webhook: redisstore: extend: %w", err)
	}
	return s.held(ctx, "extend", c, extendScript, claimValue(c.Token), millis(lease))
}

// Complete implements [webhook.Store]: it marks c's key done, remembered
// for keep, or returns [webhook.ErrLeaseLost] when c no longer holds it.
// Retried after a lost connection (see [Store.Extend]); a run whose reply
// was lost is recognised by the next run of the same call.
func (s *Store) Complete(ctx context.Context, c webhook.Claim, keep time.Duration) error {
	if err := s.check(keep); err != nil {
		return fmt.Errorf("webhook: redisstore: complete: %w", err)
	}
	return s.held(ctx, "complete", c, completeScript, claimValue(c.Token), "d:"+rand.Text(), millis(keep))
}

// Release implements [webhook.Store]: it deletes c's key so that a
// redelivery processes the event, or returns [webhook.ErrLeaseLost] when c
// no longer holds it. Retried after a lost connection (see
// [Store.Extend]); a release whose reply was lost and that go-redis or
// the store ran again reports ErrLeaseLost, though the key is gone as
// asked.
func (s *Store) Release(ctx context.Context, c webhook.Claim) error {
	if s == nil || s.client == nil {
		return fmt.Errorf("webhook: redisstore: release: %w", ErrNilClient)
	}
	return s.held(ctx, "release", c, releaseScript, claimValue(c.Token))
}

// held runs a token-checked script for c, again after a lost connection,
// and maps its 0 to ErrLeaseLost.
// A claim without a token (not Claimed, or made up) holds nothing.
func (s *Store) held(ctx context.Context, op string, c webhook.Claim, script *redis.Script, args ...any) error {
	if c.Result != webhook.Claimed || c.Token == "" {
		return webhook.ErrLeaseLost
	}
	n, err := s.retry(ctx, script, c.Key, args...)
	switch {
	case err != nil:
		return fmt.Errorf("webhook: redisstore: %s: %w", op, err)
	case n != 1:
		return webhook.ErrLeaseLost
	}
	return nil
}

// check reports why a call cannot be made: no client, or d < 1 ns.
func (s *Store) check(d time.Duration) error {
	switch {
	case s == nil || s.client == nil:
		return ErrNilClient
	case d <= 0:
		return ErrInvalidDuration
	}
	return nil
}

func claimValue(token string) string { return "c:" + token }

// millis is d in whole milliseconds, rounded up: PX takes milliseconds and
// refuses 0, so 1.5 ms is held for 2 ms and 1 ns for 1 ms.
func millis(d time.Duration) int64 {
	ms := int64(d / time.Millisecond)
	if d%time.Millisecond != 0 {
		ms++
	}
	return ms
}
