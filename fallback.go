package resilient

import (
	"bytes"
	"io"
	"net/http"
	"strconv"
)

// WithFallback sets a function called when a call ends in an error: an open
// circuit breaker, attempts exhausted on transport errors, a timeout. It
// receives the request and that error, and may return a response instead
// (cached data, a default) or an error. A fallback that returns neither a
// response nor an error leaves the original outcome in place. A nil f
// removes the fallback.
//
// By default it is never called for a response, whatever its status; with
// [WithFallbackOn] it is also called for the final responses that its
// predicate picks, such as a 503 after the last retry, so that one function
// serves a host that is down whether it refuses connections or answers
// 503. [CannedResponse] makes an f that answers with a fixed response.
func WithFallback(f func(req *http.Request, err error) (*http.Response, error)) Option {
	return optionFunc(func(c *config) { c.fallback = f })
}

// WithFallbackOn makes the fallback of [WithFallback] also run for a final
// response for which when reports true: the response that is left when the
// retries are over (or that was not retried). The fallback then gets a
// [*StatusError] with the response's status and header, not the response:
// when it returns a response or an error, the original response is closed
// and replaced; when it returns neither, the original response is returned
// unread. when must not read the body. A nil when (the default) calls the
// fallback for errors only.
//
//	resilient.WithFallbackOn(func(r *http.Response) bool { return r.StatusCode >= 500 })
func WithFallbackOn(when func(resp *http.Response) bool) Option {
	return optionFunc(func(c *config) { c.fallbackOn = when })
}

// StatusError is the error a fallback receives for a response that
// [WithFallbackOn] picked: the host answered, with this status.
type StatusError struct {
	StatusCode int         // e.g. 503
	Status     string      // e.g. "503 Service Unavailable"
	Header     http.Header // the response's header, Retry-After included
}

func (e *StatusError) Error() string {
	return "resilient: the host answered " + e.Status
}

// CannedResponse returns a fallback for [WithFallback] that answers every
// call it runs for with a new response: the given status (one outside
// 100–599 means 200), a copy of header and body. The response's Request is
// the call's request. Use it for a default answer while a host is down:
//
//	resilient.WithFallback(resilient.CannedResponse(200,
//		http.Header{"Content-Type": {"application/json"}}, []byte(`{"rates":[]}`)))
func CannedResponse(status int, header http.Header, body []byte) func(*http.Request, error) (*http.Response, error) {
	if status < 100 || status > 599 {
		status = http.StatusOK
	}
	body = bytes.Clone(body)
	header = header.Clone()
	if header == nil {
		header = make(http.Header)
	}
	return func(req *http.Request, _ error) (*http.Response, error) {
		return &http.Response{
			Status:        strconv.Itoa(status) + " " + http.StatusText(status),
			StatusCode:    status,
			Proto:         "HTTP/1.1",
			ProtoMajor:    1,
			ProtoMinor:    1,
			Header:        header.Clone(),
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
			Request:       req,
		}, nil
	}
}

type fallbackTransport struct {
	wrapped
	f    func(*http.Request, error) (*http.Response, error)
	when func(*http.Response) bool
}

// RoundTrip implements http.RoundTripper.
func (t *fallbackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := normalize(t.next.RoundTrip(req))
	if err == nil {
		if t.when == nil || !t.when(resp) {
			return resp, nil
		}
		fresp, ferr := t.f(req, &StatusError{StatusCode: resp.StatusCode, Status: resp.Status, Header: resp.Header})
		if fresp == nil && ferr == nil {
			return resp, nil
		}
		resp.Body.Close() // replaced: the fallback's answer is the call's
		return normalize(fresp, ferr)
	}
	fresp, ferr := t.f(req, err)
	if fresp == nil && ferr == nil {
		return nil, err
	}
	return normalize(fresp, ferr)
}
