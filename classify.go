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
// ([WithTimeout]), and transport errors, which are transient unless known
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
	)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, ErrCircuitOpen):
		return true
	case errors.As(err, &certErr), errors.As(err, &recordErr), errors.As(err, &unknownCA),
		errors.As(err, &hostnameErr), errors.As(err, &invalidCert), errors.As(err, &insecureAlgo):
		return true
	case errors.As(err, &dnsErr):
		return dnsErr.IsNotFound
	}
	return false
}

// isIdempotent reports whether req may be sent twice without harm: its
// method is idempotent (RFC 9110, section 9.2.2), or it carries an
// idempotency key, as net/http's own retry logic also accepts.
func isIdempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	if _, ok := req.Header["Idempotency-Key"]; ok {
		return true
	}
	_, ok := req.Header["X-Idempotency-Key"]
	return ok
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
