package resilientotel

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"syscall"

	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/resilient-go/resilient"
)

// ErrorType returns the error.type of an attempt's or a call's error: a
// short, stable name with few possible values, never the error's text
// (which may hold URLs, addresses or user data).
//
//	"circuit_open"         a circuit breaker refused the request
//	"timeout"              an attempt or total timeout, a deadline, a net.Error timeout
//	"canceled"             the caller's context was canceled
//	"body_not_replayable"  a retry was due but the body could not be sent again
//	"connection_refused"   ECONNREFUSED
//	"connection_reset"     ECONNRESET
//	"eof"                  the connection closed before the response
//	"dns"                  the host name could not be resolved
//
// Any other error gets what its ErrorType() string method says, if one in
// its chain has it, else its Go type ("*net.OpError"), as
// go.opentelemetry.io/otel/semconv's ErrorType does; wrappers that only
// add context (*url.Error, [*resilient.RetryError], fmt.Errorf's) are
// looked through first. A nil error gives "_OTHER".
func ErrorType(err error) string {
	var (
		timeout interface{ Timeout() bool }
		dns     *net.DNSError
	)
	switch {
	case err == nil:
		return semconv.ErrorTypeOther.Value.AsString()
	case errors.Is(err, resilient.ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &timeout) && timeout.Timeout():
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, resilient.ErrBodyNotReplayable):
		return "body_not_replayable"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection_refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection_reset"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.As(err, &dns):
		return "dns"
	}
	return semconv.ErrorType(unwrapContext(err)).Value.AsString()
}

// unwrapContext looks through the wrappers that add context, not a cause.
func unwrapContext(err error) error {
	for {
		var next error
		switch e := err.(type) {
		case *url.Error:
			next = e.Err
		case *resilient.RetryError:
			next = e.Err
		}
		if next == nil {
			return err
		}
		err = next
	}
}
