package webhook

import (
	"crypto/hmac"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Header names of GitHub's webhooks.
const (
	HeaderGitHubSignature = "X-Hub-Signature-256"
	HeaderGitHubDelivery  = "X-Github-Delivery"
)

type github struct{ keyed }

// GitHub returns a verifier for GitHub's scheme: X-Hub-Signature-256 holds
// "sha256=<hex HMAC-SHA256 of the raw body>". The legacy SHA-1 header
// (X-Hub-Signature, "sha1=") is not accepted. GitHub signs no timestamp, so
// there is no replay window; nor does it sign the delivery id,
// X-GitHub-Delivery, which anyone can change. [Handler] therefore
// deduplicates GitHub deliveries on the body (see [Event.Key]): a captured
// body replayed under any delivery id is recognised for as long as the
// store keeps it, and not after.
func GitHub(secret string, opts ...Option) (Verifier, error) {
	k, err := newKeyed(secret, opts, rawKey)
	if err != nil {
		return nil, err
	}
	return &github{k}, nil
}

// Verify implements Verifier.
func (v *github) Verify(h http.Header, body []byte) error {
	raw, err := sigHeader(h, HeaderGitHubSignature)
	if err != nil {
		return err
	}
	hexSig, ok := strings.CutPrefix(raw, "sha256=")
	if !ok {
		return fmt.Errorf("%w: %s does not start with sha256=", ErrInvalidHeader, HeaderGitHubSignature)
	}
	sig, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: %s is not hex", ErrInvalidHeader, HeaderGitHubSignature)
	}
	for _, key := range v.keys {
		if hmac.Equal(sig, mac(key, body)) {
			return nil
		}
	}
	return ErrInvalidSignature
}

// identify: X-GitHub-Delivery is not signed, so it is not the dedupe key.
func (v *github) identify(h http.Header, _ []byte) (string, bool, time.Time) {
	return h.Get(HeaderGitHubDelivery), false, time.Time{}
}

// SignGitHub returns an X-Hub-Signature-256 value for body, as GitHub
// computes it.
func SignGitHub(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac([]byte(secret), body))
}
