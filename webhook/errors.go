package webhook

import "errors"

// Errors returned by the verifiers, wrapped with the name of the header at
// fault; test them with errors.Is.
var (
	// ErrMissingHeader: a header the scheme needs is absent or empty.
	ErrMissingHeader = errors.New("webhook: missing header")
	// ErrInvalidHeader: a header is present but malformed.
	ErrInvalidHeader = errors.New("webhook: invalid header")
	// ErrTimestampOutOfRange: the signed timestamp is outside the tolerance,
	// too old or too far in the future.
	ErrTimestampOutOfRange = errors.New("webhook: timestamp outside the tolerance")
	// ErrInvalidSignature: no signature matches the body under any secret.
	ErrInvalidSignature = errors.New("webhook: invalid signature")
	// ErrNoSecret: a verifier was built without a usable secret.
	ErrNoSecret = errors.New("webhook: no secret")
)
