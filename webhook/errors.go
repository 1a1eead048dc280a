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

// ErrUnknownClaimResult: a Store answered Claim with a result that is not
// Claimed, InProgress or Done, or with Claimed but no token or another
// key (a claim that Complete and Release could not fence). The handler
// fails closed: 503, not processed.
var ErrUnknownClaimResult = errors.New("webhook: store returned an unknown claim result")

// StoreError is what [Handler] reports to [WithErrorHandler] when a store
// call fails: Op is "Claim", "Extend", "Complete" or "Release", Err the
// store's error (ErrLeaseLost, context.DeadlineExceeded for a call that ran
// past the store timeout, or the store's own).
type StoreError struct {
	Op  string
	Err error
}

func (e *StoreError) Error() string { return "webhook: store " + e.Op + ": " + e.Err.Error() }

// Unwrap returns Err.
func (e *StoreError) Unwrap() error { return e.Err }
