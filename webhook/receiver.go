package webhook

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"
)

// Receiver does for any handler what [Handler] does before processing:
// method check, bounded body read, verification, event id and key. Handlers
// built outside this package (webhook/pgstore, a queue) use it so that
// their answers match Handler's exactly:
//
//	rc := webhook.NewReceiver(v, opts...)
//	http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		e, ok := rc.Receive(w, r)
//		if !ok {
//			return // answered already
//		}
//		// dedupe on e.Key(), bounded by rc.Settings().StoreTimeout;
//		// rc.Unavailable(w) when the store fails
//	})
//
// A Receiver is safe for concurrent use.
type Receiver struct {
	v   Verifier
	cfg config
}

// NewReceiver returns a Receiver that verifies with v. Options that do not
// concern receiving (WithStore, WithLease, WithKeep, WithStoreTimeout,
// WithRetryAfter) are kept for the caller in [Receiver.Settings].
func NewReceiver(v Verifier, opts ...HandlerOption) *Receiver {
	return &Receiver{v: v, cfg: newConfig(opts)}
}

// Settings returns the values of the options, defaults filled in.
func (rc *Receiver) Settings() HandlerSettings { return rc.cfg.HandlerSettings }

// Receive reads and verifies one delivery. When ok is false it has written
// the response already and the caller just returns: 405 for a method other
// than POST; 413 for a body over the limit (not read past it); 408 for a
// body that did not arrive within the read timeout; 400 for an unreadable
// body, or a missing or malformed signature header; 401 for a signature
// that does not verify or a timestamp outside the window (no detail of
// which); 500 when the Receiver has no verifier. After an answer given
// before the body was read to its end (405, 408, 413), an HTTP/1
// connection is closed rather than drained at the sender's pace.
func (rc *Receiver) Receive(w http.ResponseWriter, r *http.Request) (e Event, ok bool) {
	if r.Method != http.MethodPost {
		closeUnread(w, r)
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return Event{}, false
	}
	if rc.v == nil {
		http.Error(w, "webhook handler not configured", http.StatusInternalServerError)
		return Event{}, false
	}
	body, status := rc.read(w, r)
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return Event{}, false
	}
	if err := rc.v.Verify(r.Header, body); err != nil {
		status := http.StatusUnauthorized
		if errors.Is(err, ErrMissingHeader) || errors.Is(err, ErrInvalidHeader) {
			status = http.StatusBadRequest
		}
		http.Error(w, "webhook signature rejected", status)
		return Event{}, false
	}
	return rc.newEvent(r.Header, body), true
}

// read returns the body, or the status to answer when it cannot be had.
//
// The read deadline it sets is lifted after the body is read: net/http
// does so itself for HTTP/1 once the body ends, but a deadline left on a
// connection would cancel the request's context while process runs. When
// the body was not read to its end, the deadline stays and an HTTP/1
// connection is closed after the answer: net/http would otherwise drain up
// to 256 KiB of what is left before answering, at the sender's pace.
func (rc *Receiver) read(w http.ResponseWriter, r *http.Request) (body []byte, status int) {
	defer func() {
		if status != 0 {
			closeUnread(w, r)
		}
	}()
	max := rc.cfg.MaxBodyBytes
	if r.ContentLength > max {
		return nil, http.StatusRequestEntityTooLarge
	}
	// A server's own ReadTimeout, no longer than ours, runs from the start
	// of the request and is the tighter bound: setting ours would lift it.
	srv, _ := r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil || srv.ReadTimeout <= 0 || srv.ReadTimeout > rc.cfg.ReadTimeout {
		ctl := http.NewResponseController(w)
		if ctl.SetReadDeadline(time.Now().Add(rc.cfg.ReadTimeout)) == nil {
			defer func() {
				if status == 0 {
					_ = ctl.SetReadDeadline(time.Time{})
				}
			}()
		}
	}
	rb := r.Body
	if rb == nil { // a request built by hand; a server's is never nil
		rb = http.NoBody
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, rb, max))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, http.StatusRequestEntityTooLarge
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, http.StatusRequestTimeout
	case err != nil:
		return nil, http.StatusBadRequest
	}
	return body, 0
}

// closeUnread has net/http close an HTTP/1 connection after the answer
// rather than drain the body left unread (up to 256 KiB, at the sender's
// pace, before the answer is sent).
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor == 1 && r.ContentLength != 0 {
		w.Header().Set("Connection", "close")
	}
}

// Unavailable answers 503 with Retry-After: the store or database failed
// or did not answer in time, and the sender should redeliver later.
func (rc *Receiver) Unavailable(w http.ResponseWriter) {
	secs := (rc.cfg.RetryAfter + time.Second - 1) / time.Second
	w.Header().Set("Retry-After", strconv.FormatInt(int64(secs), 10))
	http.Error(w, "try again later", http.StatusServiceUnavailable)
}

// ReportError hands an error the response cannot carry (a store call that
// failed after the answer was decided, such as Complete) to the function
// set with [WithErrorHandler], if any. A nil err is ignored.
func (rc *Receiver) ReportError(ctx context.Context, e Event, err error) {
	if err != nil && rc.cfg.onError != nil {
		rc.cfg.onError(ctx, e, err)
	}
}
