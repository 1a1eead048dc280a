package webhook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Handler returns an http.Handler that verifies each delivery with v and
// calls process once per event ([Event.Key]), also when deliveries of one
// event reach several replicas at the same moment, given a shared [Store].
//
// Responses: those of [Receiver.Receive] (405, 413, 408, 400, 401); 200
// without calling process for an event already done; 409 while another
// delivery holds the event (the sender retries); 503 with Retry-After when
// the store fails, does not answer within the store timeout, or answers
// nonsense (fail closed: not processed); 500 when process fails or
// panics, after releasing the event so that a redelivery processes it; 200
// when process succeeds.
//
// While process runs, the handler renews the claim every third of the
// lease, also after the sender hung up (process's context is then
// cancelled, but the claim stays held until process returns); if the
// store says the lease is lost (another delivery took the event after a
// renewal failed), or renewals fail until the lease runs out, it cancels
// process's context with cause [ErrLeaseLost] (context.Cause).
//
// After a successful process, Complete records the event. If Complete
// fails or times out, the answer is still 200: the effect is applied, and
// a 500 would make the sender redeliver and, once the claim's lease ran
// out, process the event a second time. The failure goes to
// [WithErrorHandler] instead: the event is then remembered only until its
// lease runs out, and a redelivery after that (which a 200 makes unlikely)
// would be processed again. Complete and Release run detached from the
// request's cancellation, so that a sender hanging up does not prevent
// them, but within the store timeout.
func Handler(v Verifier, process func(ctx context.Context, e Event) error, opts ...HandlerOption) http.Handler {
	rc := NewReceiver(v, opts...)
	h := &handler{rc: rc, process: process, store: rc.cfg.store}
	if h.store == nil {
		ms := NewMemoryStore(0)
		ms.OnEvict(func(ctx context.Context, err *EvictionError) {
			e, _ := ctx.Value(eventKey{}).(*Event)
			if e == nil {
				e = &Event{}
			}
			rc.ReportError(ctx, *e, err)
		})
		h.store = ms
	}
	return h
}

type handler struct {
	rc      *Receiver
	process func(context.Context, Event) error
	store   Store
}

// eventKey carries the event being claimed to the default store's
// eviction report.
type eventKey struct{}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.process == nil {
		http.Error(w, "webhook handler not configured", http.StatusInternalServerError)
		return
	}
	e, ok := h.rc.Receive(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	at := time.Now()
	c, err := h.claim(ctx, e)
	if err == nil {
		err = checkClaim(c, e.Key())
	}
	if err != nil {
		if ctx.Err() == nil || !errors.Is(err, ctx.Err()) { // not the sender hanging up
			h.rc.ReportError(ctx, e, &StoreError{Op: "Claim", Err: err})
		}
		h.rc.Unavailable(w)
		return
	}
	switch c.Result {
	case Done:
		w.WriteHeader(http.StatusOK)
	case InProgress:
		http.Error(w, "event in progress", http.StatusConflict)
	default:
		if h.run(ctx, e, c, at) != nil {
			http.Error(w, "processing failed", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	}
}

// checkClaim fails closed on an answer the handler cannot act on safely:
// an unknown result, or a claim without a token or of another key, which
// Complete and Release could not fence.
func checkClaim(c Claim, key string) error {
	switch {
	case c.Result != Claimed && c.Result != InProgress && c.Result != Done:
		return fmt.Errorf("%w: %d", ErrUnknownClaimResult, int(c.Result))
	case c.Result == Claimed && (c.Token == "" || c.Key != key):
		return fmt.Errorf("%w: Claimed without a token or of another key", ErrUnknownClaimResult)
	}
	return nil
}

func (h *handler) claim(ctx context.Context, e Event) (Claim, error) {
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, eventKey{}, &e), h.rc.cfg.StoreTimeout)
	defer cancel()
	return h.store.Claim(ctx, e.Key(), h.rc.cfg.Lease)
}

// run calls process for a claimed event, renewing the lease meanwhile, and
// records the outcome: Complete after success, Release after an error or
// a panic (which then goes on).
func (h *handler) run(ctx context.Context, e Event, c Claim, claimedAt time.Time) error {
	pctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := h.keepAlive(pctx, cancel, e, c, claimedAt)
	finished := false
	defer func() {
		if !finished { // process panicked
			stop()
			h.finish(ctx, pctx, e, "Release", func(sctx context.Context) error { return h.store.Release(sctx, c) })
		}
	}()
	err := h.process(pctx, e)
	stop()
	finished = true
	if err != nil {
		h.finish(ctx, pctx, e, "Release", func(sctx context.Context) error { return h.store.Release(sctx, c) })
		return err
	}
	h.finish(ctx, pctx, e, "Complete", func(sctx context.Context) error { return h.store.Complete(sctx, c, h.rc.cfg.Keep) })
	return nil
}

// finish runs Complete or Release detached from the request's
// cancellation, within the store timeout, and reports its failure, but for
// an ErrLeaseLost the renewer reported already.
func (h *handler) finish(ctx, pctx context.Context, e Event, op string, call func(context.Context) error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.rc.cfg.StoreTimeout)
	defer cancel()
	err := call(sctx)
	if err != nil && !(errors.Is(err, ErrLeaseLost) && context.Cause(pctx) == ErrLeaseLost) {
		h.rc.ReportError(ctx, e, &StoreError{Op: op, Err: err})
	}
}
