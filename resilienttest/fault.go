package resilienttest

import (
	"net/http"
	"strconv"
	"time"
)

// kind says what a [Fault] does once its delay has passed.
type kind int

const (
	kindPass     kind = iota // hand the request on
	kindStatus               // answer with a status, without handing the request on
	kindReset                // drop the connection
	kindStall                // never answer
	kindTruncate             // hand the request on, cut the response body
	kindLost                 // hand the request on, drop the connection
	kindBroken               // start the answer, then drop the connection
)

// Fault is one misbehaviour of a server, applied to one attempt by
// [Faults]. Make one with [Pass], [Status], [Latency], [Reset],
// [LostResponse], [Stall] or [Truncate]; [Fault.After] adds a delay before
// any of them. The zero Fault
// is [Pass]. A Fault is a small value, safe to copy and to share.
type Fault struct {
	kind   kind
	status int
	header http.Header
	delay  time.Duration
	keep   int64 // bytes of the body delivered by Truncate
}

// Pass hands the attempt on unchanged: to the wrapped RoundTripper or
// handler, or to the in-memory 200 OK responder when there is none.
func Pass() Fault { return Fault{} }

// Status answers the attempt with the status code and the header pairs in
// kv, without handing the request on: the server is there and says no.
// The body is the status text, as http.Error writes it (none for 204 and
// 304). A code outside 200–599 means 500; a name at the end of kv without
// a value is ignored.
//
//	resilienttest.Status(503, "Retry-After", "1")
//	resilienttest.Status(429, "Retry-After", "2")
func Status(code int, kv ...string) Fault {
	if code < 200 || code > 599 {
		code = http.StatusInternalServerError
	}
	h := make(http.Header, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return Fault{kind: kindStatus, status: code, header: h}
}

// Latency hands the attempt on after d, like a slow network or a slow
// server. The wait ends early when the request's context ends, and the
// attempt then fails with the context's error, as a real transport's would.
// A negative d means 0.
func Latency(d time.Duration) Fault { return Pass().After(d) }

// Reset drops the connection without an answer. The request body is read
// first, so the server may have acted on the request: a POST without an
// idempotency key must not be sent again.
//
// As a RoundTripper, the attempt fails with a *net.OpError for which
// errors.Is(err, syscall.ECONNRESET) is true, as a reset TCP connection
// fails in net/http. As a handler, the connection is hijacked and closed
// with a TCP reset (HTTP/1), or the handler panics with
// [http.ErrAbortHandler] (HTTP/2, and writers that cannot be hijacked),
// which makes the server drop the stream.
//
// Over a real socket, net/http's client itself resends a replayable request
// (a GET, or one with an Idempotency-Key header) that fails this way on a
// reused keep-alive connection, so the handler sees one attempt more than
// the client's layers sent; [BrokenResponse] is the fault it never resends.
func Reset() Fault { return Fault{kind: kindReset} }

// BrokenResponse reads the request, starts the answer (a status line and
// half a header) and closes the connection: the client fails with
// [io.ErrUnexpectedEOF] in its error chain, like [Reset] a failure after
// the server may have acted on the request. Unlike [Reset], net/http's
// client never resends it on its own, because part of an answer arrived, so
// every attempt that the client's layers send reaches the handler exactly
// once, also on reused connections. As a handler over HTTP/2 (or a writer
// that cannot be hijacked), it drops the stream as [Reset] does.
func BrokenResponse() Fault { return Fault{kind: kindBroken} }

// LostResponse hands the attempt on, so the server acts on it, then drops
// the connection before the response arrives: the client gets the error of
// [Reset], though the request was served. It is the case idempotency keys
// exist for: a retry must not charge twice. As a handler, the wrapped
// handler's response is discarded and the connection dropped as by
// [Reset].
func LostResponse() Fault { return Fault{kind: kindLost} }

// Stall reads the request and never answers: the attempt ends only when
// its context ends (a timeout of the client, the caller giving up), with
// the context's error. As a handler the wait also ends when the client
// closes the connection; a client without a timeout then waits forever, and
// so does the httptest server's Close.
func Stall() Fault { return Fault{kind: kindStall} }

// Truncate hands the attempt on, then cuts the response body after n bytes:
// the status and headers arrive whole, a known Content-Length still promises
// the whole body, and reading the body fails with [io.ErrUnexpectedEOF]
// after n bytes.
// A body of n bytes or fewer is delivered whole but promised one byte
// longer, so the read still fails. A negative n means 0.
//
// As a handler, the wrapped handler's response is buffered, the first n
// bytes are sent and the connection is dropped (the handler panics with
// [http.ErrAbortHandler] after flushing).
func Truncate(n int64) Fault { return Fault{kind: kindTruncate, keep: max(n, 0)} }

// After returns f delayed by d: the attempt waits d (or until its context
// ends) before f applies. Delays add up: Latency(d1).After(d2) waits
// d1+d2. A negative d adds nothing.
//
//	resilienttest.Status(503).After(200 * time.Millisecond)
func (f Fault) After(d time.Duration) Fault {
	f.delay += max(d, 0)
	return f
}

// String describes f for test failure messages: "pass", "503",
// "reset after 200ms", "truncate at 10 bytes".
func (f Fault) String() string {
	var s string
	switch f.kind {
	case kindStatus:
		s = http.StatusText(f.status)
		if s == "" {
			s = "status"
		}
		s = strconv.Itoa(f.status) + " " + s
	case kindReset:
		s = "reset"
	case kindLost:
		s = "lost response"
	case kindBroken:
		s = "broken response"
	case kindStall:
		s = "stall"
	case kindTruncate:
		s = "truncate at " + strconv.FormatInt(f.keep, 10) + " bytes"
	default:
		if f.delay > 0 {
			return "latency " + f.delay.String()
		}
		return "pass"
	}
	if f.delay > 0 {
		s += " after " + f.delay.String()
	}
	return s
}
