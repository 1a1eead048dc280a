package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Verifier checks that a webhook delivery was signed by its sender and is
// fresh. Verify takes the raw body exactly as received. It returns nil, or
// an error that errors.Is one of ErrMissingHeader, ErrInvalidHeader,
// ErrTimestampOutOfRange and ErrInvalidSignature. Verifiers are safe for
// concurrent use.
type Verifier interface {
	Verify(h http.Header, body []byte) error
}

// identifier is implemented by the verifiers of this package: it gives the
// event id and signed time of a delivery that passed Verify, and whether
// the signature covers the id. An empty id means the delivery has none.
type identifier interface {
	identify(h http.Header, body []byte) (id string, signed bool, at time.Time)
}

// Bounds on what a verifier examines of an unauthenticated request, so
// that its cost does not grow with what a sender puts in it.
const (
	// MaxSignatureHeaderBytes is the longest signature header examined;
	// a longer one is rejected with ErrInvalidHeader before any parsing.
	MaxSignatureHeaderBytes = 4096
	// MaxSignatures is the most entries examined in one signature header
	// (Standard Webhooks' space-separated signatures, Stripe's
	// comma-separated items); a header with more is rejected with
	// ErrInvalidHeader. Senders send one or two (during a rotation).
	MaxSignatures = 16
)

// header returns the value of a required header.
func header(h http.Header, name string) (string, error) {
	v := h.Get(name)
	if v == "" {
		return "", fmt.Errorf("%w: %s", ErrMissingHeader, name)
	}
	return v, nil
}

// sigHeader returns the value of a required signature header, refusing one
// longer than MaxSignatureHeaderBytes.
func sigHeader(h http.Header, name string) (string, error) {
	v, err := header(h, name)
	if err == nil && len(v) > MaxSignatureHeaderBytes {
		return "", fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidHeader, name, MaxSignatureHeaderBytes)
	}
	return v, err
}

// parseUnix reads a timestamp in seconds since the Unix epoch.
func parseUnix(name, v string) (time.Time, error) {
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs < 0 {
		return time.Time{}, fmt.Errorf("%w: %s is not a Unix time in seconds", ErrInvalidHeader, name)
	}
	return time.Unix(secs, 0), nil
}

// checkWindow rejects a timestamp more than tolerance away from now, in
// either direction.
func (s *settings) checkWindow(t time.Time) error {
	d := s.now().Sub(t)
	if d > s.tolerance || d < -s.tolerance {
		return fmt.Errorf("%w: %v away from now", ErrTimestampOutOfRange, d.Round(time.Second))
	}
	return nil
}

// mac returns HMAC-SHA256 of the parts, joined with '.', under key.
func mac(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for i, p := range parts {
		if i > 0 {
			m.Write([]byte{'.'})
		}
		m.Write(p)
	}
	return m.Sum(nil)
}

// keyed is what every verifier holds: its settings and its secrets as keys.
type keyed struct {
	s    settings
	keys [][]byte
}

// newKeyed applies opts and turns every non-empty secret into a key with
// decode; at least one key is needed.
func newKeyed(secret string, opts []Option, decode func(string) ([]byte, error)) (keyed, error) {
	k := keyed{s: newSettings(secret, opts)}
	for _, sec := range k.s.secrets {
		if sec == "" {
			continue
		}
		key, err := decode(sec)
		if err != nil {
			return keyed{}, err
		}
		k.keys = append(k.keys, key)
	}
	if len(k.keys) == 0 {
		return keyed{}, ErrNoSecret
	}
	return k, nil
}

// rawKey uses a secret as it is.
func rawKey(secret string) ([]byte, error) { return []byte(secret), nil }
