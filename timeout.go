package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"time"
)

// WithAttemptTimeout bounds each attempt: sending the request, waiting for
// the response headers and reading the response body. A body that arrives in
// time is read whole; a body that stalls past the timeout fails the read with
// a [*TimeoutError]. An attempt that times out is retried when [WithRetry] is
// also given. To bound the whole call, every retry and wait included, as
// [http.Client.Timeout] does, use [WithTotalTimeout].
//
// A zero or negative d leaves the layer out (no attempt timeout).
func WithAttemptTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.attemptTimeout = max(d, 0) })
}

// WithTimeout is [WithAttemptTimeout] under its first name: it bounds each
// attempt, not the call.
//
// Deprecated: use [WithAttemptTimeout], whose name says what it bounds;
// [http.Client.Timeout] and most peers mean the whole call by "timeout",
// which is [WithTotalTimeout] here. WithTimeout keeps working unchanged.
func WithTimeout(d time.Duration) Option { return WithAttemptTimeout(d) }

// WithTotalTimeout bounds the whole call: every attempt, every wait between
// attempts, and the reading of the final response body. When it fires no
// further attempt is made. A retry wait that would end after it is not started.
//
// A zero or negative d leaves the layer out (no total timeout).
func WithTotalTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.totalTimeout = max(d, 0) })
}

// roundTripBefore sends req under a context that ends at the given time
// with cause, and that stays alive until the response body is read to EOF
// or closed, like the cancelTimerBody of net/http's Client.
func roundTripBefore(next http.RoundTripper, req *http.Request, at time.Time, cause *deadlineCause) (*http.Response, error) {
	ctx, cancel := context.WithDeadlineCause(req.Context(), at, cause)
	areq := req.WithContext(ctx)
	switch b := req.Body.(type) {
	case nil:
	case deadlineWatcher:
		b.watch(ctx)
	default:
		if b != http.NoBody && watchable(b) {
			areq.Body = &watchedBody{rc: b, ctx: ctx, want: req.ContentLength}
		}
	}
	resp, err := normalize(next.RoundTrip(areq))
	if err != nil {
		err = timeoutErr(ctx, err)
		cancel()
		return nil, err
	}
	if resp.Body == nil || resp.Body == http.NoBody {
		cancel()
		return resp, nil
	}
	b := &deadlineBody{rc: resp.Body, ctx: ctx, cancel: cancel}
	if w, ok := resp.Body.(io.Writer); ok { // 101 Switching Protocols
		resp.Body = &deadlineRWBody{b, w}
	} else {
		resp.Body = b
	}
	return resp, nil
}

// timeoutErr turns err into a *TimeoutError when a deadline of this package,
// and not the caller's, is what ended ctx.
func timeoutErr(ctx context.Context, err error) error {
	c, ok := context.Cause(ctx).(*deadlineCause)
	if !ok {
		return err
	}
	var te *TimeoutError
	if errors.As(err, &te) {
		return err
	}
	return &TimeoutError{Scope: c.scope, After: c.after, Err: err}
}

// deadlineBody releases the timeout's context when the body is done with.
type deadlineBody struct {
	rc     io.ReadCloser
	ctx    context.Context
	cancel context.CancelFunc
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	switch err {
	case nil:
	case io.EOF:
		b.cancel()
	default:
		err = timeoutErr(b.ctx, err)
	}
	return n, err
}

func (b *deadlineBody) Close() error {
	err := b.rc.Close()
	b.cancel()
	return err
}

// deadlineRWBody keeps the io.Writer of an upgraded connection's body.
type deadlineRWBody struct {
	*deadlineBody
	w io.Writer
}

func (b *deadlineRWBody) Write(p []byte) (int, error) { return b.w.Write(p) }
