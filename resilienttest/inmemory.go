package resilienttest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// InMemory returns a RoundTripper that serves every request with h, in the
// calling goroutine, without a socket: the base transport of tests that run
// under testing/synctest, where a real socket would never let the bubble's
// fake clock advance. A nil h answers 200 OK with the body "ok".
//
// The handler sees a request as net/http's server would give it: a path-only
// URL, Host, RequestURI, a RemoteAddr, TLS set for https, and the client's
// body, which is closed when the handler returns. The response is built
// when the handler returns, so a handler that streams is answered in one
// piece; a handler that waits should select on the request's context, which
// is the client's. When that context has ended by the time the handler
// returns, the attempt fails with its error, as with a real server.
//
// Like net/http's server, a handler that panics with [http.ErrAbortHandler]
// drops the connection: before it wrote anything, the attempt fails like
// [Reset]; after, its response arrives with what was written and the body
// read fails with [io.ErrUnexpectedEOF]. So does a body shorter than the
// Content-Length the handler set. Any other panic is not recovered.
func InMemory(h http.Handler) http.RoundTripper {
	if h == nil {
		h = okHandler
	}
	return inMemory{h}
}

// okTransport is InMemory(nil), the responder of Faults and Recorder.
var okTransport = InMemory(nil)

type inMemory struct{ h http.Handler }

func (m inMemory) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	if err := ctx.Err(); err != nil {
		closeBody(req)
		return nil, err
	}
	if req.URL == nil {
		closeBody(req)
		return nil, fmt.Errorf("resilienttest: request has no URL")
	}
	w := newMemWriter()
	aborted := run(m.h, w, serverRequest(req))
	closeBody(req)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if aborted && !w.wrote {
		return nil, resetError(req)
	}
	w.WriteHeader(http.StatusOK) // no-op when the handler wrote one
	body, short := w.body.Bytes(), aborted
	cl := int64(-1) // the Content-Length the handler set
	if v, err := strconv.ParseInt(w.sent.Get("Content-Length"), 10, 64); err == nil && v >= 0 {
		cl = v
		short = short || int64(len(body)) < cl
		body = body[:min(int64(len(body)), cl)]
	}
	if req.Method == http.MethodHead {
		body, short = nil, false
	}
	resp := newResponse(req, w.code, w.sent, body)
	switch {
	case short:
		resp.ContentLength = cl
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{io.ErrUnexpectedEOF}))
	case req.Method == http.MethodHead:
		resp.ContentLength = cl
	}
	return resp, nil
}

// run serves r with h and reports whether h aborted with
// http.ErrAbortHandler; other panics go on.
func run(h http.Handler, w http.ResponseWriter, r *http.Request) (aborted bool) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				panic(v)
			}
			aborted = true
		}
	}()
	h.ServeHTTP(w, r)
	return false
}

// serverRequest is req as net/http's server would hand it to a handler.
func serverRequest(req *http.Request) *http.Request {
	r := req.Clone(req.Context())
	r.URL = &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath, RawQuery: req.URL.RawQuery}
	r.RequestURI = req.URL.RequestURI()
	if r.Host == "" {
		r.Host = req.URL.Host
	}
	r.RemoteAddr = "192.0.2.1:1234" // TEST-NET-1, as httptest.NewRequest
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	if req.URL.Scheme == "https" {
		r.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, HandshakeComplete: true, ServerName: r.Host}
	}
	if r.Body == nil {
		r.Body = http.NoBody
	}
	if r.Header == nil {
		r.Header = make(http.Header)
	}
	r.GetBody = nil
	if r.Method == "" {
		r.Method = http.MethodGet
	}
	return r
}

// errReader fails every read with its error.
type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// memWriter is an http.ResponseWriter that keeps the response in memory.
type memWriter struct {
	header http.Header
	sent   http.Header // the header as it was when WriteHeader was called
	code   int
	wrote  bool
	body   bytes.Buffer
}

func newMemWriter() *memWriter { return &memWriter{header: make(http.Header)} }

func (w *memWriter) Header() http.Header { return w.header }

// WriteHeader records the first final status; informational (1xx) ones
// are dropped, and an invalid code panics, as in net/http.
func (w *memWriter) WriteHeader(code int) {
	if code < 100 || code > 999 {
		panic(fmt.Sprintf("invalid WriteHeader code %v", code))
	}
	if w.wrote || code < 200 {
		return
	}
	w.wrote, w.code, w.sent = true, code, w.header.Clone()
}

func (w *memWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(p)
}

// Flush sends the header, as http.Flusher does.
func (w *memWriter) Flush() { w.WriteHeader(http.StatusOK) }
