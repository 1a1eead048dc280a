package webhook

import (
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

type hmacScheme struct{ keyed }

// HMAC returns a verifier for the generic scheme: the signature header
// (X-Signature) holds the hex HMAC-SHA256 of "<timestamp>.<raw body>", and the
// timestamp header (X-Timestamp) the Unix time in seconds. [WithHeaders]
// renames both. The replay window applies in both directions. The event id
// is the "id" field of the JSON body, if any.
func HMAC(secret string, opts ...Option) (Verifier, error) {
	k, err := newKeyed(secret, opts, rawKey)
	if err != nil {
		return nil, err
	}
	return &hmacScheme{k}, nil
}

// Verify implements Verifier.
func (v *hmacScheme) Verify(h http.Header, body []byte) error {
	raw, err := sigHeader(h, v.s.signatureHeader)
	if err != nil {
		return err
	}
	ts, err := header(h, v.s.timestampHeader)
	if err != nil {
		return err
	}
	sig, err := hex.DecodeString(raw)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrInvalidHeader, v.s.signatureHeader)
	}
	t, err := parseUnix(v.s.timestampHeader, ts)
	if err != nil {
		return err
	}
	if err := v.s.checkWindow(t); err != nil {
		return err
	}
	for _, key := range v.keys {
		if hmac.Equal(sig, mac(key, []byte(ts), body)) {
			return nil
		}
	}
	return ErrInvalidSignature
}

// identify: the id is inside the signed body.
func (v *hmacScheme) identify(h http.Header, body []byte) (string, bool, time.Time) {
	t, _ := parseUnix("", h.Get(v.s.timestampHeader))
	return jsonID(body), true, t
}

// SignHMAC returns the signature and timestamp header values of the
// [HMAC] scheme for body at t.
func SignHMAC(secret string, t time.Time, body []byte) (signature, timestamp string) {
	ts := strconv.FormatInt(t.Unix(), 10)
	return hex.EncodeToString(mac([]byte(secret), []byte(ts), body)), ts
}
