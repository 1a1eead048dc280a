package webhook

import (
	"crypto/hmac"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Header names of the Standard Webhooks specification.
const (
	HeaderWebhookID        = "Webhook-Id"
	HeaderWebhookTimestamp = "Webhook-Timestamp"
	HeaderWebhookSignature = "Webhook-Signature"
)

type standardWebhooks struct{ keyed }

// StandardWebhooks returns a verifier for the Standard Webhooks
// specification, v1 symmetric signatures: webhook-signature holds a
// space-separated list of "v1,<base64 HMAC-SHA256>" over "id.timestamp.body";
// any one match passes and other versions are ignored. Signatures are
// strict base64 (canonical padding bits), and a header of more than
// [MaxSignatures] entries or [MaxSignatureHeaderBytes] is refused as
// malformed. The secret is base64,
// with or without its "whsec_" prefix; a secret that does not decode is an
// error wrapping ErrNoSecret.
func StandardWebhooks(secret string, opts ...Option) (Verifier, error) {
	k, err := newKeyed(secret, opts, whsecKey)
	if err != nil {
		return nil, err
	}
	return &standardWebhooks{k}, nil
}

// Verify implements Verifier.
func (v *standardWebhooks) Verify(h http.Header, body []byte) error {
	id, err := header(h, HeaderWebhookID)
	if err != nil {
		return err
	}
	ts, err := header(h, HeaderWebhookTimestamp)
	if err != nil {
		return err
	}
	sigs, err := sigHeader(h, HeaderWebhookSignature)
	if err != nil {
		return err
	}
	t, err := parseUnix(HeaderWebhookTimestamp, ts)
	if err != nil {
		return err
	}
	if err := v.s.checkWindow(t); err != nil {
		return err
	}
	fields := strings.Fields(sigs)
	if len(fields) > MaxSignatures {
		return fmt.Errorf("%w: %s has more than %d signatures", ErrInvalidHeader, HeaderWebhookSignature, MaxSignatures)
	}
	var got [][]byte
	for _, sig := range fields {
		version, b64, ok := strings.Cut(sig, ",")
		if !ok || version != "v1" {
			continue
		}
		// Strict: the reference libraries compare canonical base64 text,
		// so a signature with non-zero padding bits is not the same one.
		if g, err := strictBase64.DecodeString(b64); err == nil {
			got = append(got, g)
		}
	}
	if len(got) == 0 {
		return ErrInvalidSignature
	}
	for _, key := range v.keys {
		want := mac(key, []byte(id), []byte(ts), body)
		for _, g := range got {
			if hmac.Equal(g, want) {
				return nil
			}
		}
	}
	return ErrInvalidSignature
}

var strictBase64 = base64.StdEncoding.Strict()

// identify: webhook-id is part of the signed content.
func (v *standardWebhooks) identify(h http.Header, _ []byte) (string, bool, time.Time) {
	t, _ := parseUnix(HeaderWebhookTimestamp, h.Get(HeaderWebhookTimestamp))
	return h.Get(HeaderWebhookID), true, t
}

// SignStandardWebhooks returns the webhook-signature value ("v1,<base64>")
// for a delivery, as a sender computes it; see [StandardWebhooks] for the
// secret's form.
func SignStandardWebhooks(secret, id string, t time.Time, body []byte) (string, error) {
	key, err := whsecKey(secret)
	if err != nil {
		return "", err
	}
	ts := strconv.FormatInt(t.Unix(), 10)
	return "v1," + base64.StdEncoding.EncodeToString(mac(key, []byte(id), []byte(ts), body)), nil
}

// whsecKey decodes a Standard Webhooks secret: base64, with an optional
// whsec_ prefix.
func whsecKey(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil || len(key) == 0 {
		return nil, fmt.Errorf("%w: a Standard Webhooks secret is base64, with an optional whsec_ prefix", ErrNoSecret)
	}
	return key, nil
}
