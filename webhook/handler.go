package webhook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"time"
)

// Event is one verified delivery, as handed to the process function.
type Event struct {
	// ID identifies the event across redeliveries: webhook-id for Standard
	// Webhooks, X-GitHub-Delivery for GitHub, the JSON "id" for Stripe and
	// HMAC, or what [WithEventID] returns. When none is found it is the hex
	// SHA-256 of the body, so identical bodies count as one event.
	ID string
	// Timestamp is the signed time of the delivery; zero for GitHub.
	Timestamp time.Time
	// Header is the request's header.
	Header http.Header
	// Body is the raw body, exactly as received and verified.
	Body []byte
}

// Defaults of [Handler].
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultLease        = 5 * time.Minute
	DefaultKeep         = 72 * time.Hour
)

// HandlerOption configures [Handler].
type HandlerOption interface {
	applyHandler(*handler)
}

type handlerOptionFunc func(*handler)

func (f handlerOptionFunc) applyHandler(h *handler) { f(h) }

// WithStore sets the dedupe store (default: a [NewMemoryStore] of
// [DefaultMaxEvents]). A nil s is ignored.
func WithStore(s Store) HandlerOption {
	return handlerOptionFunc(func(h *handler) {
		if s != nil {
			h.store = s
		}
	})
}

// WithMaxBodyBytes sets the largest body accepted (default 1 MiB; zero or
// negative means the default). A larger body gets 413 and is not read past
// the limit.
func WithMaxBodyBytes(n int64) HandlerOption {
	return handlerOptionFunc(func(h *handler) {
		if n > 0 {
			h.maxBody = n
		}
	})
}

// WithLease sets how long a delivery holds its claim while process runs
// (default 5 minutes): if the process dies, a redelivery after the lease
// processes the event. Keep it longer than process takes.
func WithLease(d time.Duration) HandlerOption {
	return handlerOptionFunc(func(h *handler) {
		if d > 0 {
			h.lease = d
		}
	})
}

// WithKeep sets how long a processed event id is remembered (default 72 h,
// longer than the senders' retry schedules).
func WithKeep(d time.Duration) HandlerOption {
	return handlerOptionFunc(func(h *handler) {
		if d > 0 {
			h.keep = d
		}
	})
}

// WithEventID sets how the event id is found, for verifiers of your own or
// ids in other places. A nil f or an empty result falls back to the default.
func WithEventID(f func(h http.Header, body []byte) string) HandlerOption {
	return handlerOptionFunc(func(h *handler) { h.eventID = f })
}

type handler struct {
	v       Verifier
	process func(context.Context, Event) error
	store   Store
	maxBody int64
	lease   time.Duration
	keep    time.Duration
	eventID func(http.Header, []byte) string
}

// Handler returns an http.Handler that verifies each delivery with v and
// calls process once per event id. Responses: 405 for a method other than
// POST; 413 for a body over the limit; 400 for a missing or malformed
// signature header and 401 for a signature that does not verify or a
// timestamp outside the window (with no detail of which); 200 without
// calling process for an event already processed; 409 while another
// delivery of the same event is being processed (the sender retries); 500
// when process fails, after which the event is released so that a
// redelivery processes it; 503 when the store fails; 200 on success.
func Handler(v Verifier, process func(ctx context.Context, e Event) error, opts ...HandlerOption) http.Handler {
	h := &handler{v: v, process: process, maxBody: DefaultMaxBodyBytes, lease: DefaultLease, keep: DefaultKeep}
	for _, o := range opts {
		if o != nil {
			o.applyHandler(h)
		}
	}
	if h.store == nil {
		h.store = NewMemoryStore(0)
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, status := h.read(w, r)
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if h.v == nil || h.process == nil {
		http.Error(w, "webhook handler not configured", http.StatusInternalServerError)
		return
	}
	if err := h.v.Verify(r.Header, body); err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, ErrMissingHeader) || errors.Is(err, ErrInvalidHeader) {
			status = http.StatusBadRequest
		}
		http.Error(w, "webhook signature rejected", status)
		return
	}
	e := h.event(r.Header, body)
	ctx := r.Context()
	claim, err := h.store.Claim(ctx, e.ID, h.lease)
	switch {
	case err != nil:
		http.Error(w, "try again later", http.StatusServiceUnavailable)
		return
	case claim == Done:
		w.WriteHeader(http.StatusOK)
		return
	case claim == InProgress:
		http.Error(w, "event in progress", http.StatusConflict)
		return
	}
	if err := h.run(ctx, e); err != nil {
		http.Error(w, "processing failed", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// read returns the body, or the status to answer when it cannot be had.
func (h *handler) read(w http.ResponseWriter, r *http.Request) ([]byte, int) {
	if r.ContentLength > h.maxBody {
		return nil, http.StatusRequestEntityTooLarge
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge
	case err != nil:
		return nil, http.StatusBadRequest
	}
	return body, 0
}

// run calls process for a claimed event and records the outcome; a panic in
// process releases the claim before it goes on.
func (h *handler) run(ctx context.Context, e Event) (err error) {
	completed := false
	defer func() {
		if !completed {
			// Detached from the request: the release must happen even
			// when the sender hung up.
			_ = h.store.Release(context.WithoutCancel(ctx), e.ID)
		}
	}()
	if err := h.process(ctx, e); err != nil {
		return err
	}
	completed = true
	// The work is done: even if the store cannot record it, the answer is
	// 200, and the claim keeps redeliveries out until its lease ends.
	_ = h.store.Complete(context.WithoutCancel(ctx), e.ID, h.keep)
	return nil
}

func (h *handler) event(hdr http.Header, body []byte) Event {
	e := Event{Header: hdr, Body: body}
	if id, ok := h.v.(identifier); ok {
		e.ID, e.Timestamp = id.identify(hdr, body)
	}
	if h.eventID != nil {
		if id := h.eventID(hdr, body); id != "" {
			e.ID = id
		}
	}
	if e.ID == "" {
		sum := sha256.Sum256(body)
		e.ID = "sha256:" + hex.EncodeToString(sum[:])
	}
	return e
}
