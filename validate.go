package resilient

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrInvalidRequest marks the error of a request that the transport refused
// before using a connection because it cannot be sent as it is: no URL or
// host, a nil Header, a method that is not a token, or a header field whose
// name or value cannot be written on the wire (a value holding CR or LF,
// say). The transport's own error is wrapped too. Such an attempt counts as
// not sent; it is never retried and never judged by a circuit breaker: it
// says nothing about the host. The request is checked only when an attempt
// fails, so a call that succeeds pays nothing for the check.
var ErrInvalidRequest = errors.New("resilient: invalid request")

// validRequest reports what net/http's Transport refuses before using a
// connection, so that a local mistake is neither retried nor held against
// the host. Other URL schemes are left to the base transport, which may
// have registered them.
func validRequest(req *http.Request) error {
	switch {
	case req.URL == nil:
		return fmt.Errorf("%w: nil URL", ErrInvalidRequest)
	case req.Header == nil:
		return fmt.Errorf("%w: nil Header", ErrInvalidRequest)
	case req.Method != "" && !isToken(req.Method):
		return fmt.Errorf("%w: method %q", ErrInvalidRequest, req.Method)
	case (req.URL.Scheme == "http" || req.URL.Scheme == "https") && req.URL.Host == "" && req.Host == "":
		return fmt.Errorf("%w: no host in URL", ErrInvalidRequest)
	}
	if what := invalidField(req.Header); what != "" {
		return fmt.Errorf("%w: header %s", ErrInvalidRequest, what)
	}
	if what := invalidField(req.Trailer); what != "" {
		return fmt.Errorf("%w: trailer %s", ErrInvalidRequest, what)
	}
	return nil
}

// invalidField names the first field of h that cannot be sent, "" if none.
// The value itself is never quoted: it may be a secret.
func invalidField(h http.Header) string {
	for k, vv := range h {
		if !isToken(k) {
			return fmt.Sprintf("field name %q", k)
		}
		for _, v := range vv {
			if !validFieldValue(v) {
				return fmt.Sprintf("field value for %q", k)
			}
		}
	}
	return ""
}

// isToken reports whether s is an RFC 9110 token (tchar+), the grammar of
// methods and field names.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x80 || !tchar[c] {
			return false
		}
	}
	return s != ""
}

// validFieldValue reports whether v holds no control character other than
// space and horizontal tab, as net/http's own check.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// tchar marks the characters of an RFC 9110 token.
var tchar = func() (t [128]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()
