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
func (h *handler) keepAlive(ctx context.Context, cancel context.CancelCauseFunc, e Event, c Claim, claimedAt time.Time) (stop func()) {
	lease := h.rc.cfg.Lease
	every := max(lease/3, minRenewEvery)
	rctx, rcancel := context.WithCancel(ctx)
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		tick := time.NewTicker(every)
		defer tick.Stop()
		heldUntil := claimedAt.Add(lease)
		for {
			select {
			case <-rctx.Done():
				return
			case <-tick.C:
			}
			at := time.Now()
			err := h.extend(rctx, c, lease)
			switch {
			case err == nil:
				heldUntil = at.Add(lease)
				continue
			case rctx.Err() != nil:
				return // stopped, or the request ended
			case errors.Is(err, ErrLeaseLost):
				h.rc.ReportError(ctx, e, &StoreError{Op: "Extend", Err: err})
				cancel(ErrLeaseLost)
				return
			case !time.Now().Before(heldUntil):
				err = fmt.Errorf("%w: renewals failed until it ran out: %w", ErrLeaseLost, err)
				h.rc.ReportError(ctx, e, &StoreError{Op: "Extend", Err: err})
				cancel(ErrLeaseLost)
				return
			}
			h.rc.ReportError(ctx, e, &StoreError{Op: "Extend", Err: err})
		}
	}()
	return func() {
		rcancel()
		<-ended
	}
}

func (h *handler) extend(ctx context.Context, c Claim, lease time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, h.rc.cfg.StoreTimeout)
	defer cancel()
	return h.store.Extend(ctx, c, lease)
}
