package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// run runs script on prefix+key with EVALSHA (EVAL when Redis does not
// have it cached yet) and returns its integer reply. It returns by the
// time ctx is done: when the client does not watch the context's deadline
// itself (ContextTimeoutEnabled off, or a client type New does not know),
// the call runs in a goroutine that is left to finish on its own, bounded
// by the client's timeouts. An error caused by ctx wraps its cause, so
// errors.Is(err, context.DeadlineExceeded) holds.
func (s *Store) run(ctx context.Context, script *redis.Script, key string, args ...any) (int64, error) {
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	keys := []string{s.prefix + key}
	if s.ctxBounds || ctx.Done() == nil {
		n, err := script.Run(ctx, s.client, keys, args...).Int64()
		if err != nil {
			err = explain(ctx, err)
		}
		return n, err
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
