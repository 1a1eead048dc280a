package webhook

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestHandlerHungStoreAnswers503WithRetryAfter: a Claim stuck on the
// database is cut at the store timeout; the sender gets 503 and when to
// come back, and the failure is reported.
func TestHandlerHungStoreAnswers503WithRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.claim = func(ctx context.Context, _ string, _ time.Duration) (Claim, error) { return Claim{}, hang(ctx) }
		var rep reported
		var calls atomic.Int32
		h := newTestHandler(t, func(context.Context, Event) error { calls.Add(1); return nil },
			WithStore(s), WithStoreTimeout(500*time.Millisecond), WithRetryAfter(1500*time.Millisecond), rep.option())
		start := time.Now()
		w := serve(h, delivery(t, "msg_hung", `{}`))
		assert.Equal(t, 500*time.Millisecond, time.Since(start), "bounded by the store timeout (fake time)")
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Equal(t, "2", w.Header().Get("Retry-After"), "rounded up to whole seconds")
		assert.Zero(t, calls.Load())
		errs := rep.all()
		require.Len(t, errs, 1)
		var se *StoreError
		require.ErrorAs(t, errs[0], &se)
		assert.Equal(t, "Claim", se.Op)
		assert.ErrorIs(t, errs[0], context.DeadlineExceeded)
	})
}

// TestHandlerClaimStopsWhenSenderHangsUp: the Claim runs on the request's
// context; a sender that went away is not reported as a store failure.
func TestHandlerClaimStopsWhenSenderHangsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.claim = func(ctx context.Context, _ string, _ time.Duration) (Claim, error) { return Claim{}, hang(ctx) }
		var rep reported
		h := newTestHandler(t, func(context.Context, Event) error { return nil }, WithStore(s), rep.option())
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		w := serve(h, delivery(t, "msg_gone", `{}`).WithContext(ctx))
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		assert.Equal(t, http.StatusServiceUnavailable, w.Code)
		assert.Empty(t, rep.all())
	})
}

// TestHandlerUnknownClaimResultFailsClosed: a store answering a result the
// handler does not know gets 503, and the event is not processed.
func TestHandlerUnknownClaimResultFailsClosed(t *testing.T) {
	for _, res := range []ClaimResult{0, 4, -1} {
		s := newFaultyStore()
		s.claim = func(_ context.Context, key string, _ time.Duration) (Claim, error) {
			return Claim{Key: key, Token: "t", Result: res}, nil
		}
		var rep reported
		var calls atomic.Int32
		h := newTestHandler(t, func(context.Context, Event) error { calls.Add(1); return nil }, WithStore(s), rep.option())
		w := serve(h, delivery(t, "msg_odd", `{}`))
		assert.Equal(t, http.StatusServiceUnavailable, w.Code, res)
		assert.NotEmpty(t, w.Header().Get("Retry-After"))
		assert.Zero(t, calls.Load(), res)
		require.Len(t, rep.all(), 1)
		assert.ErrorIs(t, rep.all()[0], ErrUnknownClaimResult)
	}
}

// TestHandlerFailingCompleteIsReported: the effect is applied, so the
// answer stays 200 (a 500 would make the sender redeliver and process it
// again once the lease ran out); the failure goes to the error handler.
func TestHandlerFailingCompleteIsReported(t *testing.T) {
	s := newFaultyStore()
	errDown := errors.New("connection refused")
	s.complete = func(context.Context, Claim, time.Duration) error { return errDown }
	var rep reported
	var calls atomic.Int32
	h := newTestHandler(t, func(context.Context, Event) error { calls.Add(1); return nil }, WithStore(s), rep.option())
	assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_c", `{}`)).Code)
	errs := rep.all()
	require.Len(t, errs, 1)
	var se *StoreError
	require.ErrorAs(t, errs[0], &se)
	assert.Equal(t, "Complete", se.Op)
	assert.ErrorIs(t, errs[0], errDown)
	assert.Equal(t, "msg_c", rep.events[0].ID)
	assert.Equal(t, http.StatusConflict, serve(h, delivery(t, "msg_c", `{}`)).Code,
		"the claim, not released, keeps redeliveries out until its lease ends")
	assert.Equal(t, int32(1), calls.Load())
}

// TestHandlerCompleteIsBoundedAndDetached: Complete runs even when the
// sender hung up during process, and stops at the store timeout.
func TestHandlerCompleteIsBoundedAndDetached(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		var canceledAtCall error
		var deadline time.Time
		s.complete = func(ctx context.Context, _ Claim, _ time.Duration) error {
			canceledAtCall = ctx.Err()
			deadline, _ = ctx.Deadline()
			return hang(ctx)
		}
		var rep reported
		ctx, hangUp := context.WithCancel(context.Background())
		defer hangUp()
		h := newTestHandler(t, func(context.Context, Event) error { hangUp(); return nil },
			WithStore(s), WithStoreTimeout(3*time.Second), rep.option())
		start := time.Now()
		w := serve(h, delivery(t, "msg_d", `{}`).WithContext(ctx))
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Equal(t, 3*time.Second, time.Since(start), "no longer than the store timeout")
		assert.NoError(t, canceledAtCall, "not cancelled with the request")
		assert.Equal(t, start.Add(3*time.Second), deadline)
		require.Len(t, rep.all(), 1)
		assert.ErrorIs(t, rep.all()[0], context.DeadlineExceeded)
	})
}

// TestHandlerFailingReleaseIsReported: process failed, Release failed too:
// 500, and the error handler hears of the release.
func TestHandlerFailingReleaseIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.release = func(ctx context.Context, _ Claim) error { return hang(ctx) }
		var rep reported
		h := newTestHandler(t, func(context.Context, Event) error { return errors.New("boom") },
			WithStore(s), WithStoreTimeout(time.Second), rep.option())
		assert.Equal(t, http.StatusInternalServerError, serve(h, delivery(t, "msg_r", `{}`)).Code)
		require.Len(t, rep.all(), 1)
		var se *StoreError
		require.ErrorAs(t, rep.all()[0], &se)
		assert.Equal(t, "Release", se.Op)
	})
}

// TestHandlerReportsEarlyEvictionOfDefaultStore: the default in-memory
// store, full, forgets a done event inside its keep; the error handler is
// told, with the event whose claim made room.
func TestHandlerReportsEarlyEvictionOfDefaultStore(t *testing.T) {
	var rep reported
	h := newTestHandler(t, func(context.Context, Event) error { return nil }, rep.option())
	ms := h.(*handler).store.(*MemoryStore)
	ctx := context.Background()
	for i := range DefaultMaxEvents {
		c, err := ms.Claim(ctx, "filler-"+strconv.Itoa(i), time.Minute)
		if err == nil {
			err = ms.Complete(ctx, c, time.Hour)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_new", `{}`)).Code)
	require.Len(t, rep.all(), 1)
	var ev *EvictionError
	require.ErrorAs(t, rep.all()[0], &ev)
	assert.Equal(t, "filler-0", ev.Key)
	assert.Equal(t, "msg_new", rep.events[0].ID)
	assert.Equal(t, DefaultMaxEvents, ms.Len())
}

// TestHandlerPanicWithHungReleaseIsBounded: process panics and the store
// hangs on Release: the panic goes on after the store timeout, not never.
func TestHandlerPanicWithHungReleaseIsBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newFaultyStore()
		s.release = func(ctx context.Context, _ Claim) error { return hang(ctx) }
		var rep reported
		h := newTestHandler(t, func(context.Context, Event) error { panic("bug") },
			WithStore(s), WithStoreTimeout(2*time.Second), rep.option())
		start := time.Now()
		assert.PanicsWithValue(t, "bug", func() { serve(h, delivery(t, "msg_pr", `{}`)) })
		assert.Equal(t, 2*time.Second, time.Since(start))
		require.Len(t, rep.all(), 1)
		assert.True(t, errors.Is(rep.all()[0], context.DeadlineExceeded))
	})
}

// TestHandlerUnfenceableClaimFailsClosed: a store that answers Claimed
// without a token, or for another key, cannot have its claim completed or
// released safely: 503, not processed, reported.
func TestHandlerUnfenceableClaimFailsClosed(t *testing.T) {
	for name, bad := range map[string]func(key string) Claim{
		"no token":    func(key string) Claim { return Claim{Key: key, Result: Claimed} },
		"another key": func(string) Claim { return Claim{Key: "other", Token: "t", Result: Claimed} },
		"no key":      func(string) Claim { return Claim{Token: "t", Result: Claimed} },
	} {
		s := newFaultyStore()
		s.claim = func(_ context.Context, key string, _ time.Duration) (Claim, error) { return bad(key), nil }
		var rep reported
		var calls atomic.Int32
		h := newTestHandler(t, func(context.Context, Event) error { calls.Add(1); return nil }, WithStore(s), rep.option())
		w := serve(h, delivery(t, "msg_unfenced", `{}`))
		assert.Equal(t, http.StatusServiceUnavailable, w.Code, name)
		assert.Zero(t, calls.Load(), name)
		require.Len(t, rep.all(), 1, name)
		assert.ErrorIs(t, rep.all()[0], ErrUnknownClaimResult, name)
	}
}

// TestHandlerStoreFailureReportedEvenIfSenderLeft: a Claim that fails for
// the store's own reason (or answers nonsense) is reported although the
// sender hung up meanwhile; only the error the hang-up caused is not.
func TestHandlerStoreFailureReportedEvenIfSenderLeft(t *testing.T) {
	errDown := errors.New("connection refused")
	for name, tc := range map[string]struct {
		claim func(ctx context.Context, key string) (Claim, error)
		want  error
	}{
		"store error": {func(context.Context, string) (Claim, error) { return Claim{}, errDown }, errDown},
		"nonsense":    {func(_ context.Context, key string) (Claim, error) { return Claim{Key: key, Result: 9}, nil }, ErrUnknownClaimResult},
		"hang-up":     {func(ctx context.Context, _ string) (Claim, error) { return Claim{}, ctx.Err() }, nil},
	} {
		s := newFaultyStore()
		ctx, hangUp := context.WithCancel(context.Background())
		s.claim = func(_ context.Context, key string, _ time.Duration) (Claim, error) {
			hangUp()
			return tc.claim(ctx, key)
		}
		var rep reported
		h := newTestHandler(t, func(context.Context, Event) error { return nil }, WithStore(s), rep.option())
		assert.Equal(t, http.StatusServiceUnavailable, serve(h, delivery(t, "msg_left", `{}`).WithContext(ctx)).Code, name)
		if tc.want == nil {
			assert.Empty(t, rep.all(), name)
			continue
		}
		require.Len(t, rep.all(), 1, name)
		assert.ErrorIs(t, rep.all()[0], tc.want, name)
	}
}

// TestWithStoreTypedNilIgnored: a nil *MemoryStore passed as a Store is
// ignored like a nil Store, instead of panicking on the first delivery.
func TestWithStoreTypedNilIgnored(t *testing.T) {
	var m *MemoryStore
	h := newTestHandler(t, func(context.Context, Event) error { return nil }, WithStore(m))
	w := serve(h, delivery(t, "msg_typed_nil", `{}`))
	if w.Code != http.StatusOK {
		t.Fatalf("status %d, want 200", w.Code)
	}
}
