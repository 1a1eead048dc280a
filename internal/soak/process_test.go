package soak_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/resilient-go/resilient/webhook"
)

// Shares of the process calls that fail before the effect, and that run
// for slowWork, one and a half leases, kept by the handler's renewals.
const (
	failShare = 0.05
	slowShare = 0.02
	slowWork  = hookLease * 3 / 2
)

var errFlaky = errors.New("process failed on purpose")

// work is the common part of the process functions: it fails for a share
// of the calls, runs past the lease for another, and returns an error
// when its context ended, so that no effect follows a lost lease.
func (h *hooks) work(ctx context.Context, e webhook.Event) error {
	h.calls.Add(1)
	fail, d := false, time.Duration(1+rand.N(10))*time.Millisecond
	switch u := rand.Float64(); {
	case u < failShare:
		fail = true
	case u < failShare+slowShare && time.Now().Add(slowWork).Before(h.end):
		d = slowWork // ending within the run, which the drain need not wait for
	}
	h.mu.Lock()
	ev := h.events[e.ID]
	if ev.done {
		h.again++ // processed after a 200 for the same event
		if ev.late {
			h.lateAgain++
		}
	}
	if fail {
		h.failed[ev.stream]++
	}
	h.mu.Unlock()
	if fail {
		return errFlaky
	}
	if !sleep(ctx, d) || ctx.Err() != nil { // the lease was lost
		return context.Cause(ctx)
	}
	return nil
}

// process is the process of the lease and redis streams: its effect is a
// count in memory, made only while the claim is held.
func (h *hooks) process(ctx context.Context, e webhook.Event) error {
	if err := h.work(ctx, e); err != nil {
		return err
	}
	h.mu.Lock()
	h.effects[e.ID]++
	h.mu.Unlock()
	return nil
}

// processTx is the process of the transactional stream: its effect is a
// row, committed with the record that the event is done.
func (h *hooks) processTx(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
	if err := h.work(ctx, e); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+pgx.Identifier{h.fx}.Sanitize()+" (event) VALUES ($1)", e.ID); err != nil {
		h.txFailed.Add(1)
		return err
	}
	return nil
}
