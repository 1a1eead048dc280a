package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
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

// Pauses between the runs of a token-checked script whose connection
// failed, and the most runs when ctx has no deadline. go-redis has retried
// on its own (MaxRetries) inside each run already.
const (
	firstPause  = 5 * time.Millisecond
	maxPause    = 250 * time.Millisecond
	maxAttempts = 3
)

// retry runs script like [Store.run] until it succeeds, fails other than
// by a lost connection ([connLost]), or ctx ends; without a deadline on
// ctx, at most maxAttempts times. It never waits past ctx: when ctx ends
// during a pause, the error says so and wraps the last failure too. Only
// the token-checked scripts go through it, which may run twice (see
// [Store.Extend]).
func (s *Store) retry(ctx context.Context, script *redis.Script, key string, args ...any) (int64, error) {
	_, bounded := ctx.Deadline()
	pause := firstPause
	for n := 1; ; n++ {
		r, err := s.run(ctx, script, key, args...)
		if err == nil || ctx.Err() != nil || !connLost(err) || (!bounded && n >= maxAttempts) {
			return r, err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("%w (after %d attempts, the last: %w)", context.Cause(ctx), n, err)
		case <-t.C:
		}
		pause = min(2*pause, maxPause)
	}
}

// connLost reports whether err says that the connection failed, not the
// script: it broke or was closed (EOF, a reset, a refused dial, a socket
// timeout). The script may or may not have run. A reply of Redis (an
// error such as WRONGTYPE or LOADING, which go-redis retries itself when
// it may), the client closed, or an error of ctx is not a lost connection.
func connLost(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)
}
