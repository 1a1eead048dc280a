package resilienttest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"
)

// apply applies f to req on the client side. A request that passes, or
// whose response is to be truncated or lost, goes to base; otherwise f
// answers itself, after reading and closing the request body as a transport that
// sent the request would.
func apply(f Fault, base http.RoundTripper, req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := sleep(ctx, f.delay); err != nil {
		closeBody(req)
		return nil, err
	}
	switch f.kind {
	case kindPass:
		return base.RoundTrip(req)
	case kindTruncate:
		resp, err := base.RoundTrip(req)
		if err != nil || resp == nil {
			return resp, err
		}
		return truncate(resp, f.keep), nil
	case kindLost:
		resp, err := base.RoundTrip(req)
		if err != nil || resp == nil {
			return resp, err
		}
		resp.Body.Close()
		return nil, resetError(req)
	}
	if err := consume(ctx, req.Body, io.Discard); err != nil {
		return nil, err
	}
	switch f.kind {
	case kindStatus:
		return statusResponse(req, f.status, f.header), nil
	case kindReset:
		return nil, resetError(req)
	case kindBroken:
		return nil, brokenError(req)
	default: // kindStall
		<-ctx.Done()
		return nil, ctx.Err()
	}
}

// sleep waits d, or until ctx ends, and returns ctx's error in that case.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// consume copies body to dst and closes it. A read blocked when ctx ends is
// unblocked by closing the body, and the error is then ctx's.
func consume(ctx context.Context, body io.ReadCloser, dst io.Writer) error {
	if body == nil || body == http.NoBody {
		return nil
	}
	stop := context.AfterFunc(ctx, func() { body.Close() })
	_, err := io.Copy(dst, body)
	stop()
	body.Close()
	if err != nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	return err
}

// closeBody closes the body of a request that is not handed on.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

// statusResponse is the answer of a [Status] fault to req.
func statusResponse(req *http.Request, code int, header http.Header) *http.Response {
	h := header.Clone()
	if h == nil {
		h = make(http.Header)
	}
	var body []byte
	if code != http.StatusNoContent && code != http.StatusNotModified {
		body = []byte(http.StatusText(code) + "\n")
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	resp := newResponse(req, code, h, body)
	if req.Method == http.MethodHead {
		resp.Body = http.NoBody
	}
	return resp
}

// newResponse returns a response to req with the given status, headers and
// body, as net/http's Transport would hand it over.
func newResponse(req *http.Request, code int, h http.Header, body []byte) *http.Response {
	resp := &http.Response{
		Status:        strconv.Itoa(code) + " " + http.StatusText(code),
		StatusCode:    code,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          http.NoBody,
		ContentLength: int64(len(body)),
		Request:       req,
	}
	if len(body) > 0 {
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp
}

// resetError is the error of an attempt whose connection was reset, shaped
// like net/http's: "read tcp example.com:443: read: connection reset by peer".
func resetError(req *http.Request) error {
	e := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	if req.URL != nil && req.URL.Host != "" {
		e.Addr = hostAddr(req.URL.Host)
	}
	return e
}

// brokenError is the error of net/http's client for an answer cut off in
// its headers; see [BrokenResponse].
func brokenError(*http.Request) error {
	return fmt.Errorf("net/http: HTTP/1.x transport connection broken: %w", io.ErrUnexpectedEOF)
}

// hostAddr is the address of the server a request was sent to.
type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// truncate cuts resp's body after n bytes; see [Truncate].
func truncate(resp *http.Response, n int64) *http.Response {
	if resp.Body == nil {
		resp.Body = http.NoBody
	}
	if cl := resp.ContentLength; cl >= 0 && cl <= n {
		resp.ContentLength = cl + 1
		if resp.Header != nil && resp.Header.Get("Content-Length") != "" {
			resp.Header.Set("Content-Length", strconv.FormatInt(cl+1, 10))
		}
	}
	resp.Body = &truncatedBody{rc: resp.Body, left: n}
	return resp
}

// truncatedBody delivers at most left bytes of rc, then fails with
// io.ErrUnexpectedEOF, as a body whose connection dropped does.
type truncatedBody struct {
	rc   io.ReadCloser
	left int64
}

func (b *truncatedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, io.ErrUnexpectedEOF
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	if err == io.EOF {
		b.left = 0
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (b *truncatedBody) Close() error { return b.rc.Close() }
