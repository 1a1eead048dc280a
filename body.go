package resilient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// replay produces the request of each attempt from the caller's request,
// which is never changed.
type replay struct {
	orig *http.Request
	// getBody is the request's own GetBody, or nil.
	getBody func() (io.ReadCloser, error)
	// rec records a body without GetBody while it is sent; nil otherwise.
	rec *recorder
}

// newReplay prepares req for being sent more than once and returns the
// request of the first attempt. Nothing is read here. A request with no
// body is sent as it is; a body with GetBody is only watched, unless it is
// in memory (see watchable), so that a failure of the caller's body is not
// held against the host; a body without GetBody is recorded, up to limit
// bytes, while the first attempt streams it, so the first attempt costs no
// extra latency and no wait happens outside an attempt's deadline. A body
// whose ContentLength exceeds limit is streamed unrecorded and sent once.
func newReplay(req *http.Request, limit int64) (*http.Request, replay) {
	r := replay{orig: req}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return req, r
	case req.GetBody != nil:
		r.getBody = req.GetBody
		if !watchable(req.Body) {
			return req, r
		}
		first := shallowCopy(req)
		first.Body = &watchedBody{rc: req.Body, want: req.ContentLength}
		return first, r
	}
	r.rec = &recorder{src: req.Body, limit: limit, want: req.ContentLength, over: req.ContentLength > limit}
	first := shallowCopy(req)
	first.Body = r.rec.open()
	return first, r
}

// ok reports whether the body can be sent again now.
func (r *replay) ok() bool { return r.rec == nil || r.rec.replayable() }

// attempt returns the request for a retry, with a fresh body. With a
// recorded body it first waits, at most until ctx ends, for the transport to
// be done with the previous attempt's body.
func (r *replay) attempt(ctx context.Context) (*http.Request, error) {
	req := shallowCopy(r.orig)
	switch {
	case r.rec != nil:
		body, err := r.rec.reopen(ctx)
		if err != nil {
			return nil, err
		}
		req.Body, req.GetBody = body, nil
		if get := r.rec.complete(); get != nil {
			req.GetBody = get
		}
	case r.getBody != nil:
		body, err := r.getBody()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBodyNotReplayable, quote(err))
		}
		if body == nil {
			return nil, ErrBodyNotReplayable
		}
		if watchable(body) {
			body = &watchedBody{rc: body, want: req.ContentLength}
		}
		req.Body, req.GetBody = body, r.getBody
	}
	return req, nil
}

// finish tells the recorder that the call is over: the caller's body is
// closed as soon as no attempt reads it.
func (r *replay) finish() {
	if r.rec != nil {
		r.rec.finish()
	}
}

// shallowCopy returns a copy of req that shares its URL, headers and body,
// like req.WithContext does; fields are replaced on the copy, never changed
// in place.
func shallowCopy(req *http.Request) *http.Request {
	r := new(http.Request)
	*r = *req
	return r
}

// maxDrain bounds how much of a response body that is going to be retried
// is read, so that its keep-alive connection can be reused; a longer body is
// closed unread and its connection dropped.
const maxDrain = 64 << 10

// drain reads the body of a response that is about to be retried, at most
// maxDrain bytes and at most until the given time or the end of ctx. Draining
// runs during the wait before the next attempt, so it delays nothing; a body
// that stalls is closed when its time is up. It returns a copy of resp that
// can still be handed back if no further attempt is made, or nil when the
// body was cut short: a body read whole is closed (its connection goes back
// to the pool) and kept in memory; a longer one is kept open behind the
// bytes read, and must be closed with closeKept once another attempt is
// sent.
func drain(ctx context.Context, resp *http.Response, until time.Time) *http.Response {
	if resp == nil || resp.Body == nil {
		return nil
	}
	body := resp.Body
	var once sync.Once
	cut := func() { once.Do(func() { body.Close() }) }
	timer := time.AfterFunc(time.Until(until), cut)
	stop := context.AfterFunc(ctx, cut)
	var buf bytes.Buffer
	n, err := buf.ReadFrom(io.LimitReader(body, maxDrain+1))
	timer.Stop()
	stop()
	if err == nil && n > maxDrain {
		open := false
		once.Do(func() { open = true }) // not cut meanwhile: keep it open
		if open {
			kept := *resp
			kept.Body = &prefixedBody{io.MultiReader(&buf, body), body}
			return &kept
		}
		return nil
	}
	cut()
	if err != nil {
		return nil
	}
	kept := *resp
	kept.Body = io.NopCloser(bytes.NewReader(buf.Bytes()))
	kept.ContentLength = n
	return &kept
}

// prefixedBody is a kept response body: the bytes drained, then the rest.
type prefixedBody struct {
	io.Reader
	io.Closer
}

// closeKept closes the body of a kept response that is not handed back.
func closeKept(resp *http.Response) {
	if resp != nil {
		resp.Body.Close()
	}
}

// errRecorderClosed is the error of a Read on a recorded body after Close.
var errRecorderClosed = errors.New("resilient: read on a closed request body")
