package riverqueue

import (
	"context"
	"net/http"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/resilient-go/resilient/webhook"
)

// Handler returns an http.Handler that verifies each delivery exactly as
// webhook.Handler does, then queues the event as one River job and answers
// 200 once the insert has committed; it does not wait for processing.
//
// Responses: 405, 413, 408, 400 and 401 for bad input, exactly as
// webhook.Handler (it uses webhook.NewReceiver with the same opts); 200 when
// the job is queued, and 200 as well, inserting nothing, when a job for the
// event's Key exists in any state (queued, running, retrying, completed,
// discarded); 503 with Retry-After when the insert fails or does not commit
// within the store timeout (webhook.WithStoreTimeout, 5 s by default), so
// the sender redelivers; 500 when v or client is nil. Nothing is
// acknowledged that is not durably queued.
//
// Of the handler options, WithMaxBodyBytes, WithReadTimeout, WithEventID,
// WithStoreTimeout, WithRetryAfter and WithErrorHandler (which receives
// insert errors) apply; WithStore, WithLease and WithKeep do not: River
// holds the dedupe state, for as long as its retention keeps finished jobs
// (see [EventArgs]).
//
// The client needs no workers or queues: receivers may insert only and
// leave the work to other processes.
func Handler(client *river.Client[pgx.Tx], v webhook.Verifier, opts ...webhook.HandlerOption) http.Handler {
	return &handler{client: client, rc: webhook.NewReceiver(v, opts...)}
}

type handler struct {
	client *river.Client[pgx.Tx]
	rc     *webhook.Receiver
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	e, ok := h.rc.Receive(w, r)
	if !ok {
		return
	}
	if h.client == nil {
		h.rc.ReportError(r.Context(), e, ErrNoClient)
		http.Error(w, "webhook handler not configured", http.StatusInternalServerError)
		return
	}
	ctx := r.Context()
	if d := h.rc.Settings().StoreTimeout; d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	if _, err := h.client.Insert(ctx, NewEventArgs(e), nil); err != nil {
		h.rc.ReportError(r.Context(), e, err)
		h.rc.Unavailable(w)
		return
	}
	w.WriteHeader(http.StatusOK)
}
