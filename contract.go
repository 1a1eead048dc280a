package resilient

// The ground of the http.RoundTripper contract that every layer keeps: a
// response or an error, never both and never neither, and the body of a
// request that is not sent closed.

import (
	"net/http"
)

// normalize enforces "a response or an error": a response that comes with
// an error is closed, a nil response with a nil error becomes an error (as
// net/http's Client does), and a nil Body an empty one.
func normalize(resp *http.Response, err error) (*http.Response, error) {
	switch {
	case err != nil && resp != nil:
		if resp.Body != nil {
			resp.Body.Close()
		}
		return nil, err
	case err == nil && resp == nil:
		return nil, ErrNilResponse
	case err == nil && resp.Body == nil:
		resp.Body = http.NoBody
	}
	return resp, err
}

// closeBody closes the body of a request that will not be sent.
func closeBody(req *http.Request) {
	if req != nil && req.Body != nil {
		req.Body.Close()
	}
}
