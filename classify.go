package resilient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"syscall"
)

// IsRetryable is the default of [RetryPolicy.RetryIf]: it reports whether an
// attempt that ended with resp or err is worth repeating.
//
// Retried: the statuses 408, 429, 500, 502, 503 and 504, an attempt timeout
// ([WithAttemptTimeout]), and transport errors, which are transient unless known
// otherwise (connection refused or reset, EOF before the response, HTTP/2
// REFUSED_STREAM and GOAWAY, and the like). Not retried: every other status,
// context cancellation and deadlines other than the attempt timeout, a
// request refused by an open circuit breaker ([ErrCircuitOpen]), TLS
// certificate and handshake errors, and host names that do not exist.
func IsRetryable(resp *http.Response, err error) bool {
	if err == nil {
		if resp == nil {
			return false
		}
		switch resp.StatusCode {
		case http.StatusRequestTimeout, http.StatusTooManyRequests,
			http.StatusInternalServerError, http.StatusBadGateway,
			http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	var te *TimeoutError
	if errors.As(err, &te) {
		return te.Scope == ScopeAttempt
	}
	return !permanent(err)
}

// IsHostFailure is the default of [BreakerPolicy.FailureIf]: it reports
// whether an attempt that ended with resp or err counts against its host.
// Failures: an error, and the statuses 408, 429 and 5xx. A FailureIf that
// changes one case can build on it:
//
//	FailureIf: func(resp *http.Response, err error) bool {
//		return resilient.IsHostFailure(resp, err) && (err != nil || resp.StatusCode != 501)
//	},
//
// The breaker never asks about what is not the host's doing (the caller's
// cancellation, a local error, an answer the throttle gate takes).
func IsHostFailure(resp *http.Response, err error) bool {
	if err != nil {
		return true
	}
	if resp == nil {
		return false
	}
	c := resp.StatusCode
	return c >= 500 || c == http.StatusRequestTimeout || c == http.StatusTooManyRequests
}

// permanent reports the transport errors that a retry cannot mend.
func permanent(err error) bool {
	var (
		certErr      *tls.CertificateVerificationError
		recordErr    tls.RecordHeaderError
		unknownCA    x509.UnknownAuthorityError
		hostnameErr  x509.HostnameError
		invalidCert  x509.CertificateInvalidError
		dnsErr       *net.DNSError
		insecureAlgo x509.InsecureAlgorithmError
		opErr        *net.OpError
		alertErr     tls.AlertError
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrCircuitOpen):
		return true
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &unknownCA),
		errors.As(err, &hostnameErr), errors.As(err, &invalidCert), errors.As(err, &insecureAlgo):
		return true
	case errors.As(err, &alertErr):
		return true
	case errors.As(err, &opErr) && opErr.Op == "remote error":
		// A TLS alert from the server ("remote error: tls: protocol
		// version not supported"): the handshake will fail again.
		return true
	case errors.As(err, &dnsErr):
		return dnsErr.IsNotFound
	}
	return false
}

// local reports the errors of an attempt that say nothing about the host:
// the request could not be sent as it was, the base transport broke the
// RoundTripper contract, or the caller's own body held the attempt up or
// failed. They are never retried and never judged by a circuit breaker.
// req is the attempt's request.
func local(req *http.Request, err error) bool {
	if errors.Is(err, ErrInvalidRequest) || errors.Is(err, ErrNilResponse) || validRequest(req) != nil {
		return true
	}
	if u := req.URL; u.Scheme != "http" && u.Scheme != "https" {
		return true // a scheme no transport of ours knows, or a typo
	}
	b, ok := req.Body.(deadlineWatcher)
	return ok && b.local()
}

// canceled reports whether the caller gave up on req: its context ended, or
// its deprecated Cancel channel was closed.
func canceled(req *http.Request) bool {
	if req.Context().Err() != nil {
		return true
	}
	select {
	case <-req.Cancel: //lint:ignore SA1019 callers that still set it are honoured
		return true
	default:
		return false
	}
}

// cancelErr is the error of a request the caller gave up on.
func cancelErr(req *http.Request) error {
	if err := req.Context().Err(); err != nil {
		return err
	}
	return errRequestCanceled
}

// isIdempotent reports whether req may be sent twice without harm: its
// method is idempotent (RFC 9110, section 9.2.2), or it carries an
// idempotency key (see hasIdempotencyKey). As in net/http's own retry
// logic, an Idempotency-Key or X-Idempotency-Key entry whose value is a
// nil or empty slice also counts: net/http documents it as the way to
// mark a request idempotent without sending the header.
func isIdempotent(req *http.Request, custom string) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	if v, ok := req.Header["Idempotency-Key"]; ok && len(v) == 0 {
		return true
	}
	if v, ok := req.Header["X-Idempotency-Key"]; ok && len(v) == 0 {
		return true
	}
	return hasIdempotencyKey(req, custom)
}

// hasIdempotencyKey reports whether req carries an idempotency key that a
// server can use: a value that is not blank in Idempotency-Key,
// X-Idempotency-Key or the header configured with [IdempotencyHeader]
// (custom, "" when none). An empty value is no key: the server sees none,
// and would process a second copy of the request as a new one.
func hasIdempotencyKey(req *http.Request, custom string) bool {
	return keyIn(req.Header, "Idempotency-Key") || keyIn(req.Header, "X-Idempotency-Key") ||
		custom != "" && keyIn(req.Header, custom)
}

// keyIn reports whether the first value of h's name is not blank.
func keyIn(h http.Header, name string) bool {
	v := h[name]
	return len(v) > 0 && trimOWS(v[0]) != ""
}

// neverProcessed reports outcomes that prove the server did not act on the
// request, so that even a POST may be sent again: the connection was never
// made, or the server answered 429 Too Many Requests.
func neverProcessed(resp *http.Response, err error) bool {
	if err == nil {
		return resp != nil && resp.StatusCode == http.StatusTooManyRequests
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && (opErr.Op == "dial" || opErr.Op == "proxyconnect") {
		return true
	}
	var dnsErr *net.DNSError
	return errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dnsErr)
}

// retryableURL is false for requests that can never succeed: no URL, no
// host, or a scheme other than http and https.
func retryableURL(req *http.Request) bool {
	u := req.URL
	return u != nil && u.Host != "" && (u.Scheme == "http" || u.Scheme == "https")
}
