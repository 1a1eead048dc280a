package webhook

import (
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// HeaderStripeSignature is the header Stripe signs its events in.
const HeaderStripeSignature = "Stripe-Signature"

type stripe struct{ keyed }

// Stripe returns a verifier for Stripe's scheme: Stripe-Signature holds
// "t=<unix seconds>" and one or more "v1=<hex HMAC-SHA256>" of "t.body",
// keyed with the endpoint secret as it is (whsec_... included). Several v1
// entries (Stripe's own secret rotation) pass if any matches; v0 and unknown
// schemes are ignored. A header with a repeated t (even an empty one), more
// than [MaxSignatures] items or more than [MaxSignatureHeaderBytes] is
// refused as malformed. The event id is the "id" field of the JSON body.
func Stripe(secret string, opts ...Option) (Verifier, error) {
	k, err := newKeyed(secret, opts, rawKey)
	if err != nil {
		return nil, err
	}
	return &stripe{k}, nil
}

// Verify implements Verifier.
func (v *stripe) Verify(h http.Header, body []byte) error {
	raw, err := sigHeader(h, HeaderStripeSignature)
	if err != nil {
		return err
	}
	ts, sigs, err := parseStripe(raw)
	if err != nil {
		return err
	}
	t, err := parseUnix(HeaderStripeSignature+" t", ts)
	if err != nil {
		return err
	}
	if err := v.s.checkWindow(t); err != nil {
		return err
	}
	for _, key := range v.keys {
		want := mac(key, []byte(ts), body)
		for _, sig := range sigs {
			if hmac.Equal(sig, want) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

// parseStripe splits "t=...,v1=...,v1=...,v0=..." into the timestamp and the
// decoded v1 signatures. It examines at most MaxSignatures items and
// refuses a t that is repeated, even empty.
func parseStripe(raw string) (ts string, sigs [][]byte, err error) {
	items := strings.SplitN(raw, ",", MaxSignatures+1)
	if len(items) > MaxSignatures {
		return "", nil, fmt.Errorf("%w: %s has more than %d items", ErrInvalidHeader, HeaderStripeSignature, MaxSignatures)
	}
	seenT := false
	for _, item := range items {
		k, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return "", nil, fmt.Errorf("%w: %s item %q is not key=value", ErrInvalidHeader, HeaderStripeSignature, item)
		}
		switch k {
		case "t":
			if seenT {
				return "", nil, fmt.Errorf("%w: %s has more than one t", ErrInvalidHeader, HeaderStripeSignature)
			}
			seenT, ts = true, val
		case "v1":
			if sig, err := hex.DecodeString(val); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	if ts == "" {
		return "", nil, fmt.Errorf("%w: %s has no t", ErrInvalidHeader, HeaderStripeSignature)
	}
	if len(sigs) == 0 {
		return "", nil, ErrInvalidSignature
	}
	return ts, sigs, nil
}

// identify: the id is inside the signed body.
func (v *stripe) identify(h http.Header, body []byte) (string, bool, time.Time) {
	ts, _, _ := parseStripe(h.Get(HeaderStripeSignature))
	t, _ := parseUnix("t", ts)
	return jsonID(body), true, t
}

// jsonID returns the top-level "id" string of a JSON body, or "".
func jsonID(body []byte) string {
	var e struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(body, &e) != nil {
		return ""
	}
	return e.ID
}

// SignStripe returns a Stripe-Signature value for body at t, as Stripe
// computes it.
func SignStripe(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac([]byte(secret), []byte(ts), body))
}
