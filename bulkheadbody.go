package resilient

// How long an attempt holds its bulkhead slot (bulkhead.go): until its
// response body is done with, or its context ends.

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"time"
)

// hold ties the slot h of the attempt req, sent at began, to its outcome:
// freed now after an error, a body-less answer or an upgrade, else when
// the body is read to EOF or closed or the attempt's context ends.
func (h *hostSlots) hold(req *http.Request, began time.Time, resp *http.Response, err error) (*http.Response, error) {
	if h.b.adaptive != nil {
		h.sample(req, time.Since(began), resp, err)
	}
	if err != nil || resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusSwitchingProtocols {
		h.release()
		return resp, err
	}
	ctx := req.Context()
	switch db := resp.Body.(type) {
	case *deadlineBody: // the attempt's own context, which its timeout ends
		ctx = db.ctx
	}
	sb := &slotBody{rc: resp.Body, h: h}
	if ctx.Done() != nil {
		sb.stop = context.AfterFunc(ctx, sb.free)
	}
	resp.Body = sb
	return resp, nil
}

// slotBody frees its attempt's slot once, at EOF, Close, or when the
// attempt's context ends.
type slotBody struct {
	rc   io.ReadCloser
	h    *hostSlots
	stop func() bool
	done atomic.Bool
}

func (b *slotBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.end()
	}
	return n, err
}

func (b *slotBody) Close() error {
	err := b.rc.Close()
	b.end()
	return err
}

// end frees the slot on the caller's goroutine, which wrote stop.
func (b *slotBody) end() {
	b.free()
	if b.stop != nil {
		b.stop()
	}
}

// free frees the slot the first time only; the context's AfterFunc calls
// it too.
func (b *slotBody) free() {
	if b.done.CompareAndSwap(false, true) {
		b.h.release()
	}
}

// freeSlot frees the bulkhead slot that body holds, if it holds one: a
// retried response whose body is kept open behind the bytes drained (see
// drain) is no attempt in flight, and the retry may need its slot.
func freeSlot(body io.ReadCloser) {
	for {
		switch b := body.(type) {
		case *slotBody:
			b.end()
			return
		case *cancelBody:
			body = b.ReadCloser
		default:
			return
		}
	}
}
