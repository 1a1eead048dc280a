package resilient

import "net/http"

// WithFallback sets a function called when a call ends in an error: an open
// circuit breaker, attempts exhausted on transport errors, a timeout. It
// receives the request and that error, and may return a response instead
// (cached data, a default) or an error. It is never called for a response,
// whatever its status. A fallback that returns neither a response nor an
// error leaves the original error in place. A nil f removes the fallback.
func WithFallback(f func(req *http.Request, err error) (*http.Response, error)) Option {
	return optionFunc(func(c *config) { c.fallback = f })
}

type fallbackTransport struct {
	wrapped
	f func(*http.Request, error) (*http.Response, error)
}

// RoundTrip implements http.RoundTripper.
func (t *fallbackTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err == nil {
		return resp, nil
	}
	fresp, ferr := t.f(req, err)
	if fresp == nil && ferr == nil {
		return nil, err
	}
	return normalize(fresp, ferr) // a response's Body is never nil

}
