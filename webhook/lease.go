package webhook

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// minRenewEvery keeps a tiny lease from spinning the renewer.
const minRenewEvery = time.Millisecond

// keepAlive renews claim c every third of the lease until stop is called.
// When the store says the lease is lost, or renewals failed until the lease
// ran out by the local clock, it cancels process's context with cause
// ErrLeaseLost; either is reported. Other renewal errors are reported and
// retried at the next tick. stop cancels a renewal in flight and waits for the renewer to end.
//
// The renewer runs until stop, not until ctx ends: process may go on after
// the sender hung up (its context says stop, it may not listen), and while
// it runs the claim must stay held, or a redelivery would process the event
// a second time. A renewal never runs past the lease it tries to keep, so a
// hung store cancels process when the lease runs out, not at the store
// timeout.
func (h *handler) keepAlive(ctx context.Context, cancel context.CancelCauseFunc, e Event, c Claim, claimedAt time.Time) (stop func()) {
	lease := h.rc.cfg.Lease
	every := max(lease/3, minRenewEvery)
	rctx, rcancel := context.WithCancel(context.WithoutCancel(ctx))
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(every)
		defer tick.Stop()
		heldUntil := claimedAt.Add(lease)
		lapse := time.NewTimer(time.Until(heldUntil)) // the lease runs out unrenewed
		defer lapse.Stop()
		var lastErr error
		lost := func(err error) {
			h.rc.ReportError(ctx, e, &StoreError{Op: "Extend", Err: err})
			cancel(ErrLeaseLost)
		}
		for {
			select {
			case <-rctx.Done():
				return
			case <-lapse.C:
				if lastErr == nil { // no renewal failed: none came back in time
					lost(fmt.Errorf("%w: it ran out before a renewal came back", ErrLeaseLost))
				} else {
					lost(fmt.Errorf("%w: renewals failed until it ran out: %w", ErrLeaseLost, lastErr))
				}
				return
			case <-tick.C:
			}
			at := time.Now()
			err := h.extend(rctx, c, lease, heldUntil)
			switch {
			case err == nil:
				heldUntil = at.Add(lease)
				lapse.Reset(time.Until(heldUntil))
				continue
			case rctx.Err() != nil:
				return // stopped
			case errors.Is(err, ErrLeaseLost):
				lost(err)
				return
			case !time.Now().Before(heldUntil):
				lost(fmt.Errorf("%w: renewals failed until it ran out: %w", ErrLeaseLost, err))
				return
			}
			lastErr = err
			h.rc.ReportError(ctx, e, &StoreError{Op: "Extend", Err: err})
		}
	}()
	return func() {
		rcancel()
		<-ended
	}
}

// extend renews c within the store timeout and before heldUntil, when the
// lease it renews runs out.
func (h *handler) extend(ctx context.Context, c Claim, lease time.Duration, heldUntil time.Time) error {
	ctx, cancel := context.WithDeadline(ctx, heldUntil)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, h.rc.cfg.StoreTimeout)
	defer cancel()
	return h.store.Extend(ctx, c, lease)
}
