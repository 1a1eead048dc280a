// Package storetest is a conformance suite for implementations of
// [webhook.Store]: run it from your store's tests against a real server,
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) webhook.Store {
//			return mystore.New(connect(t)) // cleaned up with t.Cleanup
//		})
//	}
//
// It drives the store with real concurrency and real clocks (a store on a
// network cannot run in a testing/synctest bubble), with leases of
// [ShortLease] where a lease must run out and of a minute where it must
// not. It waits for expiry by polling a condition, never by sleeping a
// fixed time, and gives up after [WaitLimit]. Keys carry a random prefix
// per run, so a store that keeps its data between runs is fine. The whole
// suite takes about a second.
package storetest

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

const (
	// ShortLease is the lease (and keep) the suite waits out.
	ShortLease = 300 * time.Millisecond
	// longLease is a lease that never runs out during the suite.
	longLease = time.Minute
	// WaitLimit bounds every wait for an expiry; a store whose leases do
	// not run out within it fails.
	WaitLimit = 10 * time.Second
	// pollEvery is the pause between two polls of a condition.
	pollEvery = 10 * time.Millisecond
)

// Run checks that the stores newStore returns keep the [webhook.Store]
// contract. It calls newStore once per subtest, with the subtest's t, and
// runs the subtests in parallel.
func Run(t *testing.T, newStore func(t *testing.T) webhook.Store) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, s webhook.Store, key func(string) string)
	}{
		{"OneWinnerAmongConcurrentClaims", testOneWinner},
		{"OneWinnerTakingOverExpiredClaim", testOneWinnerTakingOver},
		{"InProgressWhileHeld", testInProgressWhileHeld},
		{"DoneAfterCompleteForKeep", testDoneForKeep},
		{"ClaimableAfterKeep", testClaimableAfterKeep},
		{"ClaimAfterLeaseExpiry", testClaimAfterExpiry},
		{"StaleTokenAfterTakeoverChangesNothing", testStaleAfterTakeover},
		{"ExpiredClaimIsLostEvenIfNotTaken", testExpiredNotTaken},
		{"StaleTokenAfterCompleteChangesNothing", testStaleAfterComplete},
		{"StaleTokenAfterReleaseChangesNothing", testStaleAfterRelease},
		{"ForeignTokenChangesNothing", testForeignToken},
		{"ExtendKeepsClaimPastFirstLease", testExtend},
		{"ReleaseLetsNextClaimWin", testRelease},
		{"KeysAreDistinct", testDistinctKeys},
	}
	prefix := "storetest-" + rand.Text() + "-"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			if s == nil {
				t.Fatal("newStore returned nil")
			}
			key := func(name string) string { return prefix + tt.name + "-" + name }
			tt.run(t, s, key)
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// claim claims key and fails the test on an error.
func claim(t *testing.T, s webhook.Store, key string, lease time.Duration) webhook.Claim {
	t.Helper()
	c, err := s.Claim(ctx(t), key, lease)
	if err != nil {
		t.Fatalf("Claim(%.40q): %v", key, err)
	}
	if c.Key != key {
		t.Fatalf("Claim(%.40q) returned Key %.40q", key, c.Key)
	}
	switch c.Result {
	case webhook.Claimed:
		if c.Token == "" {
			t.Fatalf("Claim(%.40q) = Claimed with an empty token", key)
		}
	case webhook.InProgress, webhook.Done:
		if c.Token != "" {
			t.Fatalf("Claim(%.40q) = %v with a token; want none unless Claimed", key, c.Result)
		}
	default:
		t.Fatalf("Claim(%.40q) = unknown result %v", key, c.Result)
	}
	return c
}

// mustClaim claims a key that must be free.
func mustClaim(t *testing.T, s webhook.Store, key string, lease time.Duration) webhook.Claim {
	t.Helper()
	c := claim(t, s, key, lease)
	if c.Result != webhook.Claimed {
		t.Fatalf("Claim(%.40q) = %v, want Claimed", key, c.Result)
	}
	return c
}

// expect checks the result of claiming key now (a Claimed is kept).
func expect(t *testing.T, s webhook.Store, key string, want webhook.ClaimResult) {
	t.Helper()
	if got := claim(t, s, key, longLease).Result; got != want {
		t.Fatalf("Claim(%.40q) = %v, want %v", key, got, want)
	}
}

// waitClaim polls Claim until it wins key (its lease or keep ran out) and
// returns the new claim, taken for lease.
func waitClaim(t *testing.T, s webhook.Store, key string, lease time.Duration) webhook.Claim {
	t.Helper()
	deadline := time.Now().Add(WaitLimit)
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		c := claim(t, s, key, lease)
		if c.Result == webhook.Claimed {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("Claim(%.40q) still %v after %v: expiry does not work", key, c.Result, WaitLimit)
		}
		select {
		case <-tick.C:
		case <-ctx(t).Done():
			t.Fatal("test ended while waiting for an expiry")
		}
	}
}

// lost checks that err is ErrLeaseLost.
func lost(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, webhook.ErrLeaseLost) {
		t.Fatalf("%s with a claim not held = %v, want ErrLeaseLost", op, err)
	}
}

// noErr fails on err.
func noErr(t *testing.T, op string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
}

// allRefused checks that Extend, Complete and Release of c are refused.
func allRefused(t *testing.T, s webhook.Store, c webhook.Claim) {
	t.Helper()
	lost(t, "Extend", s.Extend(ctx(t), c, longLease))
	lost(t, "Complete", s.Complete(ctx(t), c, longLease))
	lost(t, "Release", s.Release(ctx(t), c))
}
