package resilienttest

import (
	"io"
	"net"
	"net/http"
	"strconv"
)

// okHandler answers 200 OK with the body "ok": the server of a request
// that passes when no other is given.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
})

// serve applies f to r on the server side.
func serve(f Fault, next http.Handler, w http.ResponseWriter, r *http.Request) {
	if sleep(r.Context(), f.delay) != nil {
		return // the client has gone
	}
	switch f.kind {
	case kindPass:
		next.ServeHTTP(w, r)
	case kindStatus:
		writeStatus(w, f.status, f.header)
	case kindReset:
		// Read the request first, so that the server may have acted on it.
		_ = consume(r.Context(), r.Body, io.Discard)
		reset(w)
	case kindStall:
		// With the body read, net/http's server notices the client
		// closing the connection and ends the request's context.
		_ = consume(r.Context(), r.Body, io.Discard)
		<-r.Context().Done()
	case kindTruncate:
		serveTruncated(next, w, r, f.keep)
	case kindLost:
		next.ServeHTTP(newMemWriter(), r)
		reset(w)
	case kindBroken:
		_ = consume(r.Context(), r.Body, io.Discard)
		breakAnswer(w)
	}
}

// brokenStart is the start of an answer that [BrokenResponse] sends before
// it closes the connection: a status line and half a header, so that the
// client's read of the headers ends in io.ErrUnexpectedEOF.
const brokenStart = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/pl"

// breakAnswer sends the start of an answer and closes the connection
// (HTTP/1), or drops the stream (HTTP/2, and writers that cannot be
// hijacked).
func breakAnswer(w http.ResponseWriter) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil || buf == nil {
		panic(http.ErrAbortHandler)
	}
	_, _ = buf.WriteString(brokenStart)
	_ = buf.Flush()
	conn.Close() // a FIN after the bytes, so that they arrive
}

// writeStatus answers with code, the fault's headers and the status text.
func writeStatus(w http.ResponseWriter, code int, header http.Header) {
	h := w.Header()
	for k, v := range header {
		h[k] = append([]string(nil), v...)
	}
	if code == http.StatusNoContent || code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	if h.Get("Content-Type") == "" {
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, http.StatusText(code)+"\n")
}

// reset drops the connection: a TCP reset for HTTP/1, a stream reset for
// HTTP/2 and for writers that cannot be hijacked.
func reset(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := netConn(conn).(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST, not FIN
	}
	conn.Close()
}

// netConn unwraps a *tls.Conn, or any conn that says what it wraps.
func netConn(c net.Conn) net.Conn {
	for {
		u, ok := c.(interface{ NetConn() net.Conn })
		if !ok {
			return c
		}
		c = u.NetConn()
	}
}

// serveTruncated serves next into a buffer, then sends the status, the
// headers with a Content-Length for the whole body, and the first n bytes
// of the body, and drops the connection.
func serveTruncated(next http.Handler, w http.ResponseWriter, r *http.Request, n int64) {
	buf := newMemWriter()
	next.ServeHTTP(buf, r)
	buf.WriteHeader(http.StatusOK) // no-op when next wrote one
	body := buf.body.Bytes()
	keep := min(int64(len(body)), n)
	total := max(int64(len(body)), keep+1)
	h := w.Header()
	for k, v := range buf.sent {
		h[k] = v
	}
	h.Del("Transfer-Encoding")
	h.Set("Content-Length", strconv.FormatInt(total, 10))
	w.WriteHeader(buf.code)
	_, _ = w.Write(body[:keep])
	_ = http.NewResponseController(w).Flush()
	panic(http.ErrAbortHandler)
}
