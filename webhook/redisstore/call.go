package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// run runs script on prefix+key with EVALSHA (EVAL when Redis does not
// have it cached yet) and returns its integer reply. It returns by the
// time ctx is done, cancelled or past its deadline: go-redis watches only
// a context's deadline (and only with ContextTimeoutEnabled), so the call
// runs in a goroutine that is left, when ctx ends first, to finish on its
// own, bounded by ctx's deadline (ContextTimeoutEnabled) or the client's
// ReadTimeout and MaxRetries. An error caused by ctx wraps its cause, so
// errors.Is(err, context.DeadlineExceeded) holds.
func (s *Store) run(ctx context.Context, script *redis.Script, key string, args ...any) (int64, error) {
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	keys := []string{s.prefix + key}
	if ctx.Done() == nil { // cannot end: no need to watch it
		return script.Run(ctx, s.client, keys, args...).Int64()
	}
	type reply struct {
		n   int64
		err error
	}
	done := make(chan reply, 1)
	go func() {
		n, err := script.Run(ctx, s.client, keys, args...).Int64()
		done <- reply{n, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			r.err = explain(ctx, r.err)
		}
		return r.n, r.err
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	}
}

// explain adds ctx's cause to err when ctx ended: go-redis reports the
// socket's i/o timeout, which can fire a moment before the context's own
// timer marks it done.
func explain(ctx context.Context, err error) error {
	cause := context.Cause(ctx)
	if d, ok := ctx.Deadline(); ok && cause == nil && !time.Now().Before(d) {
		cause = context.DeadlineExceeded
	}
	if cause == nil {
		return err
	}
	return fmt.Errorf("%w (%w)", cause, err)
}
