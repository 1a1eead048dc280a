package resilient

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// maxDrain bounds how much of a response body that is going to be retried
// is read, so that its keep-alive connection can be reused; a longer body is
// closed unread and its connection dropped.
const maxDrain = 64 << 10

// drain reads and closes the body of a response that is not handed back.
func drain(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxDrain)
	resp.Body.Close()
}

// replay produces the request of each attempt from the caller's request,
// which is never changed.
type replay struct {
	orig *http.Request
	// getBody returns a fresh, complete copy of the body, or is nil when the
	// request has no body.
	getBody func() (io.ReadCloser, error)
	// ok is false when the body can be sent only once.
	ok bool
}

// newReplay prepares req for being sent more than once and returns the
// request of the first attempt.
//
// A request with no body, or with GetBody, costs nothing: the first attempt
// is req itself. A body without GetBody is read up to limit bytes; if it
// ends within the limit it is replayed from that buffer, otherwise the read
// part and the rest are sent once and the call is not retried. If reading
// fails, the body is closed and the error returned: nothing was sent.
func newReplay(req *http.Request, limit int64) (*http.Request, replay, error) {
	r := replay{orig: req, ok: true}
	switch {
	case req.Body == nil || req.Body == http.NoBody:
		return req, r, nil
	case req.GetBody != nil:
		r.getBody = req.GetBody
		return req, r, nil
	}
	buf, err := io.ReadAll(io.LimitReader(req.Body, limit+1))
	if err != nil {
		req.Body.Close()
		return nil, r, fmt.Errorf("resilient: reading request body for replay: %w", err)
	}
	first := shallowCopy(req)
	if int64(len(buf)) > limit {
		r.ok = false
		first.Body = &prefixedBody{Reader: io.MultiReader(bytes.NewReader(buf), req.Body), Closer: req.Body}
		return first, r, nil
	}
	req.Body.Close()
	r.getBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf)), nil }
	first.Body, _ = r.getBody()
	first.GetBody = r.getBody
	return first, r, nil
}

// attempt returns the request for a retry, with a fresh body.
func (r *replay) attempt() (*http.Request, error) {
	req := shallowCopy(r.orig)
	if r.getBody == nil {
		return req, nil
	}
	body, err := r.getBody()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBodyNotReplayable, err)
	}
	if body == nil {
		return nil, ErrBodyNotReplayable
	}
	req.Body, req.GetBody = body, r.getBody
	return req, nil
}

// shallowCopy returns a copy of req that shares its URL, headers and body,
// like req.WithContext does; fields are replaced on the copy, never changed
// in place.
func shallowCopy(req *http.Request) *http.Request {
	r := new(http.Request)
	*r = *req
	return r
}

// prefixedBody sends the part of a body read for buffering, then the rest.
type prefixedBody struct {
	io.Reader
	io.Closer
}
