package webhook

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHandlerRenewsLeaseWhileProcessRuns: process takes 9.5 s with a lease
// of 3 s; renewals every second keep a redelivery at 5 s out (409), and
// the event is processed once.
func TestHandlerRenewsLeaseWhileProcessRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		var calls atomic.Int32
		h := newTestHandler(t, func(ctx context.Context, _ Event) error {
			calls.Add(1)
			time.Sleep(9500 * time.Millisecond)
			return ctx.Err()
		}, WithStore(s), WithLease(3*time.Second))
		first := make(chan int)
		go func() { first <- serve(h, delivery(t, "msg_slow", `{}`)).Code }()
		time.Sleep(5 * time.Second)
		assert.Equal(t, http.StatusConflict, serve(h, delivery(t, "msg_slow", `{}`)).Code, "still held past the first lease")
		assert.Equal(t, http.StatusOK, <-first)
		assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_slow", `{}`)).Code)
		assert.Equal(t, int32(1), calls.Load())
		assert.Equal(t, int32(9), s.extends.Load(), "every lease/3 for 9.5 s")
		synctest.Wait()
		assert.Equal(t, int32(9), s.extends.Load(), "no renewal after process returned")
	})
}

// TestHandlerLeaseLostCancelsProcess: the store refuses a renewal (someone
// else holds the event now): process's context ends with cause
// ErrLeaseLost, the delivery gets 500, and the error handler hears of it.
func TestHandlerLeaseLostCancelsProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.extend = func(context.Context, Claim, time.Duration) error { return ErrLeaseLost }
		var rep reported
		var cause error
		h := newTestHandler(t, func(ctx context.Context, _ Event) error {
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}, WithStore(s), WithLease(3*time.Second), rep.option())
		start := time.Now()
		assert.Equal(t, http.StatusInternalServerError, serve(h, delivery(t, "msg_lost", `{}`)).Code)
		assert.Equal(t, time.Second, time.Since(start), "at the first renewal")
		assert.Equal(t, ErrLeaseLost, cause)
		require.Len(t, rep.all(), 1)
		assert.ErrorIs(t, rep.all()[0], ErrLeaseLost)
	})
}

// TestHandlerRenewalFailuresUntilLeaseEndCancelProcess: a store that
// fails every renewal: each failure is reported, and when the lease has
// run out by the local clock, process's context ends with ErrLeaseLost.
func TestHandlerRenewalFailuresUntilLeaseEndCancelProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		errDown := errors.New("connection refused")
		s.extend = func(context.Context, Claim, time.Duration) error { return errDown }
		var rep reported
		var cause error
		h := newTestHandler(t, func(ctx context.Context, _ Event) error {
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}, WithStore(s), WithLease(3*time.Second), rep.option())
		start := time.Now()
		assert.Equal(t, http.StatusInternalServerError, serve(h, delivery(t, "msg_down", `{}`)).Code)
		assert.Equal(t, 3*time.Second, time.Since(start), "when the lease ran out")
		assert.Equal(t, ErrLeaseLost, cause)
		errs := rep.all()
		require.Len(t, errs, 3, "three renewals failed")
		for _, err := range errs {
			assert.ErrorIs(t, err, errDown)
		}
		assert.ErrorIs(t, errs[2], ErrLeaseLost, "the last one says the lease is lost")
	})
}

// TestHandlerHungRenewalIsBounded: a renewal stuck in the store is cut at
// the store timeout and does not delay the answer once process returned.
func TestHandlerHungRenewalIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.extend = func(ctx context.Context, _ Claim, _ time.Duration) error { return hang(ctx) }
		h := newTestHandler(t, func(context.Context, Event) error {
			time.Sleep(1500 * time.Millisecond) // returns while the first renewal hangs
			return nil
		}, WithStore(s), WithLease(3*time.Second), WithStoreTimeout(time.Minute))
		start := time.Now()
		assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_hr", `{}`)).Code)
		assert.Equal(t, 1500*time.Millisecond, time.Since(start))
	})
}

// TestHandlerKeepsLeaseWhileProcessOutlivesRequest: the sender hangs up at
// 1.5 s, process ignores its cancelled context and runs 10 s with a lease
// of 3 s. The claim must stay held while process runs (renewals go on after
// the hang-up), so a redelivery at 5 s gets 409 and is not processed a
// second time; once process returns the event is done.
func TestHandlerKeepsLeaseWhileProcessOutlivesRequest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		var calls atomic.Int32
		h := newTestHandler(t, func(context.Context, Event) error {
			calls.Add(1)
			time.Sleep(10 * time.Second) // ignores ctx
			return nil
		}, WithStore(s), WithLease(3*time.Second))
		ctx, hangUp := context.WithCancel(context.Background())
		defer hangUp()
		first := make(chan int)
		go func() { first <- serve(h, delivery(t, "msg_gone", `{}`).WithContext(ctx)).Code }()
		time.Sleep(1500 * time.Millisecond)
		hangUp()
		time.Sleep(3500 * time.Millisecond)
		assert.Equal(t, http.StatusConflict, serve(h, delivery(t, "msg_gone", `{}`)).Code,
			"held while process still runs after the sender hung up")
		assert.Equal(t, http.StatusOK, <-first)
		assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_gone", `{}`)).Code)
		assert.Equal(t, int32(1), calls.Load())
		synctest.Wait()
		n := s.extends.Load()
		time.Sleep(time.Minute)
		assert.Equal(t, n, s.extends.Load(), "no renewal after process returned")
	})
}

// TestHandlerHungRenewalCancelsProcessAtLeaseEnd: a renewal stuck in the
// store is cut when the lease runs out by the local clock, not at the
// (longer) store timeout: process must not run unprotected past its lease.
func TestHandlerHungRenewalCancelsProcessAtLeaseEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.extend = func(ctx context.Context, _ Claim, _ time.Duration) error { return hang(ctx) }
		var rep reported
		var cause error
		h := newTestHandler(t, func(ctx context.Context, _ Event) error {
			<-ctx.Done()
			cause = context.Cause(ctx)
			return ctx.Err()
		}, WithStore(s), WithLease(3*time.Second), WithStoreTimeout(time.Minute), rep.option())
		start := time.Now()
		assert.Equal(t, http.StatusInternalServerError, serve(h, delivery(t, "msg_hung_ext", `{}`)).Code)
		assert.Equal(t, 3*time.Second, time.Since(start), "cancelled when the lease ran out")
		assert.Equal(t, ErrLeaseLost, cause)
		errs := rep.all()
		require.NotEmpty(t, errs)
		assert.ErrorIs(t, errs[len(errs)-1], ErrLeaseLost)
	})
}

// TestHandlerLeaseLostProcessIgnoringCancelIsNotCompleted: the lease is
// lost (another delivery took the event), process ignores the cancel and
// succeeds: its Complete is refused (fencing), the loss is reported once,
// and the other holder's claim is untouched.
func TestHandlerLeaseLostProcessIgnoringCancelIsNotCompleted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		var thief Claim
		s.extend = func(ctx context.Context, c Claim, lease time.Duration) error {
			// The claim ran out and another delivery took the key.
			s.MemoryStore.mu.Lock()
			s.MemoryStore.items[c.Key].expires = time.Now()
			s.MemoryStore.mu.Unlock()
			var err error
			thief, err = s.MemoryStore.Claim(ctx, c.Key, time.Hour)
			require.NoError(t, err)
			require.Equal(t, Claimed, thief.Result)
			return s.MemoryStore.Extend(ctx, c, lease)
		}
		var rep reported
		h := newTestHandler(t, func(context.Context, Event) error {
			time.Sleep(5 * time.Second)
			return nil
		}, WithStore(s), WithLease(3*time.Second), rep.option())
		assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_thief", `{}`)).Code)
		require.Len(t, rep.all(), 1, "the loss, once")
		assert.ErrorIs(t, rep.all()[0], ErrLeaseLost)
		assert.Equal(t, int32(1), s.extends.Load())
		assert.NoError(t, s.MemoryStore.Complete(context.Background(), thief, time.Hour), "the thief still holds it")
	})
}

// TestHandlerFailingRenewalsCancelAtLeaseEndNotNextTick: the renewal ticks
// do not line up with the lease's end (here the Claim took 0.5 s, so they
// fall at 1.5 s, 2.5 s, 3.5 s while the lease runs out at 3 s). With every
// renewal failing, process is cancelled when the lease runs out, not at
// the next tick after it.
func TestHandlerFailingRenewalsCancelAtLeaseEndNotNextTick(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.claim = func(ctx context.Context, key string, lease time.Duration) (Claim, error) {
			time.Sleep(500 * time.Millisecond)
			return s.MemoryStore.Claim(ctx, key, lease)
		}
		errDown := errors.New("connection refused")
		s.extend = func(context.Context, Claim, time.Duration) error { return errDown }
		var rep reported
		var cause error
		var cancelledAt time.Duration
		start := time.Now()
		h := newTestHandler(t, func(ctx context.Context, _ Event) error {
			<-ctx.Done()
			cancelledAt, cause = time.Since(start), context.Cause(ctx)
			return ctx.Err()
		}, WithStore(s), WithLease(3*time.Second), rep.option())
		assert.Equal(t, http.StatusInternalServerError, serve(h, delivery(t, "msg_lapse", `{}`)).Code)
		assert.Equal(t, 3*time.Second, cancelledAt, "when the lease ran out")
		assert.Equal(t, ErrLeaseLost, cause)
		errs := rep.all()
		require.Len(t, errs, 3, "two failed renewals, then the loss")
		assert.ErrorIs(t, errs[2], ErrLeaseLost)
		assert.ErrorIs(t, errs[2], errDown, "with the last renewal's error")
	})
}

// TestHandlerLeaseThatRunsOutBeforeAnyRenewalSaysSo: a Claim that took
// most of the lease leaves it to run out before the first renewal is due;
// the loss is reported with a text that says so, not a missing cause.
func TestHandlerLeaseThatRunsOutBeforeAnyRenewalSaysSo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.claim = func(ctx context.Context, key string, lease time.Duration) (Claim, error) {
			c, err := s.MemoryStore.Claim(ctx, key, lease)
			time.Sleep(2500 * time.Millisecond) // the answer is slow: 0.5 s of the lease is left
			return c, err
		}
		var rep reported
		h := newTestHandler(t, func(ctx context.Context, _ Event) error {
			<-ctx.Done()
			return ctx.Err()
		}, WithStore(s), WithLease(3*time.Second), rep.option())
		assert.Equal(t, http.StatusInternalServerError, serve(h, delivery(t, "msg_short_lease", `{}`)).Code)
		errs := rep.all()
		require.NotEmpty(t, errs)
		last := errs[len(errs)-1]
		assert.ErrorIs(t, last, ErrLeaseLost)
		assert.NotContains(t, last.Error(), "%!", "no renewal failed: the text names no missing cause")
		assert.Contains(t, last.Error(), "ran out before a renewal came back")
	})
}
