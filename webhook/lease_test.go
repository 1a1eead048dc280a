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
