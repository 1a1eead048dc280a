package webhook

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// ClaimResult is the outcome of [Store.Claim].
type ClaimResult int

const (
	// Claimed: the caller now holds the key and must Complete or Release it
	// (or Extend it while it works).
	Claimed ClaimResult = iota + 1
	// InProgress: another delivery of the event holds an unexpired claim.
	InProgress
	// Done: the event was processed already.
	Done
)

// String returns the name of the result.
func (r ClaimResult) String() string {
	switch r {
	case Claimed:
		return "Claimed"
	case InProgress:
		return "InProgress"
	case Done:
		return "Done"
	}
	return "ClaimResult(" + strconv.Itoa(int(r)) + ")"
}

// ErrLeaseLost is returned by Complete, Release and Extend for a claim that
// is no longer held: its lease ran out (whether or not someone else claimed
// the key since), or it was completed or released already, or its token is
// not the holder's. Nothing was changed.
var ErrLeaseLost = errors.New("webhook: lease lost")

// ErrStoreFull is returned by [MemoryStore.Claim] when the store holds its
// maximum of keys and none can be dropped (all are claimed and unexpired).
var ErrStoreFull = errors.New("webhook: dedupe store full")

// Claim is what [Store.Claim] returns: the result and, when Result is
// Claimed, the token that proves this holder owns the key. Pass it back
// unchanged to Extend, Complete and Release.
type Claim struct {
	// Key is the dedupe key that was claimed, as passed to Claim.
	Key string
	// Token is opaque and identifies this holder; empty unless Result is
	// Claimed. Each successful Claim of a key gets a new token, so a holder
	// whose lease ran out cannot touch the next holder's claim (fencing).
	Token string
	// Result says whether the key was claimed, is in progress or done.
	Result ClaimResult
}

// Store records which events are being processed and which are done, so
// that [Handler] processes each event once, also across replicas when the
// store is shared. Keys are what [Event.Key] returns (64 hex characters),
// but a Store must accept any non-empty string and treat keys that differ
// in any byte, case included, as distinct.
//
// Every method is one atomic step: Claim is an insert-if-absent with
// expiry that takes over an expired claim with a new token (INSERT ... ON
// CONFLICT ... DO UPDATE ... WHERE expired, SET NX PX); Extend, Complete
// and Release are compare-and-set on the token, and answer [ErrLeaseLost]
// without changing anything when the claim is not held. Methods honour ctx
// and return its error when it ends first. Implementations are safe for
// concurrent use. Package webhook/storetest checks all of this against a
// real store: run storetest.Run in your store's tests.
//
// Changed before 1.0: Claim used to return a bare ClaimResult, and
// Complete and Release took the id, so a holder whose lease had run out
// could complete or release the next holder's claim.
type Store interface {
	// Claim takes key for lease unless it is held (InProgress) or done
	// (Done). An expired claim counts as absent and is taken over with a
	// new token.
	Claim(ctx context.Context, key string, lease time.Duration) (Claim, error)
	// Extend renews a held claim for lease from now; ErrLeaseLost if the
	// claim is not held by c.Token.
	Extend(ctx context.Context, c Claim, lease time.Duration) error
	// Complete marks the key done, remembered for keep (a redelivery then
	// gets Done); ErrLeaseLost if the claim is not held by c.Token.
	Complete(ctx context.Context, c Claim, keep time.Duration) error
	// Release forgets a held claim so that a redelivery processes the
	// event; ErrLeaseLost if the claim is not held by c.Token.
	Release(ctx context.Context, c Claim) error
}
