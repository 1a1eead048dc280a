package storetest

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

func testOneWinner(t *testing.T, s webhook.Store, key func(string) string) {
	const n = 100
	k := key("k")
	results := make([]webhook.Claim, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Claim(ctx(t), k, longLease)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, c := range results {
		noErr(t, "concurrent Claim", errs[i])
		switch c.Result {
		case webhook.Claimed:
			won++
		case webhook.InProgress:
		default:
			t.Fatalf("concurrent Claim = %v, want Claimed or InProgress", c.Result)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent claims won, want exactly 1", won, n)
	}
}

// testOneWinnerTakingOver: when a claim's lease has run out, many
// deliveries racing to take it over get one winner, not one each (the
// takeover is part of the same atomic step as the insert).
func testOneWinnerTakingOver(t *testing.T, s webhook.Store, key func(string) string) {
	const n = 50
	k, probe := key("k"), key("probe")
	stale := mustClaim(t, s, k, ShortLease)
	mustClaim(t, s, probe, ShortLease)
	waitClaim(t, s, probe, longLease) // k's lease has run out too
	results := make([]webhook.Claim, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Claim(ctx(t), k, longLease)
		})
	}
	close(start)
	wg.Wait()
	var winner webhook.Claim
	for i, c := range results {
		noErr(t, "concurrent Claim of an expired key", errs[i])
		if c.Result == webhook.Claimed {
			if winner.Token != "" {
				t.Fatalf("two of %d concurrent takeovers of an expired claim won", n)
			}
			winner = c
		}
	}
	if winner.Token == "" || winner.Token == stale.Token {
		t.Fatalf("no takeover of the expired claim won with a new token (winner %+v)", winner)
	}
	allRefused(t, s, stale)
	noErr(t, "Complete by the winner", s.Complete(ctx(t), winner, longLease))
	expect(t, s, k, webhook.Done)
}

func testInProgressWhileHeld(t *testing.T, s webhook.Store, key func(string) string) {
	k := key("k")
	c := mustClaim(t, s, k, longLease)
	for range 3 {
		expect(t, s, k, webhook.InProgress)
	}
	noErr(t, "Extend", s.Extend(ctx(t), c, longLease))
	expect(t, s, k, webhook.InProgress)
}

func testDoneForKeep(t *testing.T, s webhook.Store, key func(string) string) {
	k := key("k")
	c := mustClaim(t, s, k, longLease)
	noErr(t, "Complete", s.Complete(ctx(t), c, longLease))
	for range 3 {
		expect(t, s, k, webhook.Done)
	}
}

func testClaimableAfterKeep(t *testing.T, s webhook.Store, key func(string) string) {
	k := key("k")
	c := mustClaim(t, s, k, longLease)
	noErr(t, "Complete", s.Complete(ctx(t), c, ShortLease))
	next := waitClaim(t, s, k, longLease)
	if next.Token == c.Token {
		t.Fatal("a new claim after the keep reuses the old token")
	}
}

func testClaimAfterExpiry(t *testing.T, s webhook.Store, key func(string) string) {
	k := key("k")
	first := mustClaim(t, s, k, ShortLease)
	next := waitClaim(t, s, k, longLease)
	if next.Token == first.Token {
		t.Fatal("the claim after expiry has the expired claim's token")
	}
	expect(t, s, k, webhook.InProgress)
	noErr(t, "Complete by the new holder", s.Complete(ctx(t), next, longLease))
	expect(t, s, k, webhook.Done)
}

// testStaleAfterTakeover: the first holder's lease ran out and a second
// delivery claimed the key; the first holder can no longer touch it.
func testStaleAfterTakeover(t *testing.T, s webhook.Store, key func(string) string) {
	k := key("k")
	stale := mustClaim(t, s, k, ShortLease)
	holder := waitClaim(t, s, k, longLease)
	allRefused(t, s, stale)
	expect(t, s, k, webhook.InProgress) // not completed, not released
	noErr(t, "Extend by the holder", s.Extend(ctx(t), holder, longLease))
	noErr(t, "Complete by the holder", s.Complete(ctx(t), holder, longLease))
	expect(t, s, k, webhook.Done)
	lost(t, "Release after Complete", s.Release(ctx(t), stale))
	expect(t, s, k, webhook.Done)
}

// testExpiredNotTaken: a claim whose lease ran out is lost even when no
// one claimed the key since. A probe key claimed after it with the same
// lease tells, on the store's own clock, when its lease has run out.
func testExpiredNotTaken(t *testing.T, s webhook.Store, key func(string) string) {
	k, probe := key("k"), key("probe")
	c := mustClaim(t, s, k, ShortLease)
	mustClaim(t, s, probe, ShortLease)
	waitClaim(t, s, probe, longLease)
	allRefused(t, s, c)
	mustClaim(t, s, k, longLease)
}

func testStaleAfterComplete(t *testing.T, s webhook.Store, key func(string) string) {
	k := key("k")
	c := mustClaim(t, s, k, longLease)
	noErr(t, "Complete", s.Complete(ctx(t), c, longLease))
	allRefused(t, s, c)
	expect(t, s, k, webhook.Done) // Release did not forget it
}

func testStaleAfterRelease(t *testing.T, s webhook.Store, key func(string) string) {
	k := key("k")
	c := mustClaim(t, s, k, longLease)
	noErr(t, "Release", s.Release(ctx(t), c))
	allRefused(t, s, c)
	next := mustClaim(t, s, k, longLease) // Complete did not mark it done
	if next.Token == c.Token {
		t.Fatal("a new claim after Release reuses the released token")
	}
}

// testForeignToken: tokens that are empty, made up, or of another key are
// refused and change nothing.
func testForeignToken(t *testing.T, s webhook.Store, key func(string) string) {
	k, other := key("k"), key("other")
	c := mustClaim(t, s, k, longLease)
	o := mustClaim(t, s, other, longLease)
	for _, bad := range []webhook.Claim{
		{Key: k, Result: webhook.Claimed},
		{Key: k, Token: "not-a-token", Result: webhook.Claimed},
		{Key: k, Token: o.Token, Result: webhook.Claimed},
		{Key: other, Token: c.Token, Result: webhook.Claimed},
		{Key: key("never-claimed"), Token: c.Token, Result: webhook.Claimed},
	} {
		allRefused(t, s, bad)
	}
	expect(t, s, k, webhook.InProgress)
	expect(t, s, other, webhook.InProgress)
	noErr(t, "Complete", s.Complete(ctx(t), c, longLease))
	noErr(t, "Release", s.Release(ctx(t), o))
}

// testExtend: a claim extended before its first lease ran out is still
// held after it. The probe key, claimed after it with the same lease, says
// on the store's clock when the first lease has run out.
func testExtend(t *testing.T, s webhook.Store, key func(string) string) {
	for attempt := 1; ; attempt++ {
		k, probe := key("k"+strings.Repeat("'", attempt)), key("probe"+strings.Repeat("'", attempt))
		start := time.Now()
		c := mustClaim(t, s, k, ShortLease)
		mustClaim(t, s, probe, ShortLease)
		err := s.Extend(ctx(t), c, longLease)
		if err != nil && time.Since(start) >= ShortLease && attempt < 5 {
			continue // this machine paused past the lease: not the store's fault
		}
		noErr(t, "Extend within the lease", err)
		waitClaim(t, s, probe, longLease)
		expect(t, s, k, webhook.InProgress)
		noErr(t, "Extend again", s.Extend(ctx(t), c, longLease))
		noErr(t, "Complete after Extend", s.Complete(ctx(t), c, longLease))
		expect(t, s, k, webhook.Done)
		return
	}
}

func testRelease(t *testing.T, s webhook.Store, key func(string) string) {
	k := key("k")
	first := mustClaim(t, s, k, longLease)
	noErr(t, "Release", s.Release(ctx(t), first))
	second := mustClaim(t, s, k, longLease)
	if second.Token == first.Token {
		t.Fatal("the claim after Release has the released token")
	}
	expect(t, s, k, webhook.InProgress)
}

// testDistinctKeys: short, long, unicode and case-differing keys are kept
// apart, byte for byte. One-byte keys cannot carry the run's prefix: give
// each store newStore returns a namespace (table, key prefix) of its own.
func testDistinctKeys(t *testing.T, s webhook.Store, key func(string) string) {
	long := (key("") + strings.Repeat("x", 1024))[:1024]
	keys := []string{
		"a", "A", "b",
		long, long[:1023] + "y",
		key("événement-日本-🎉"), key("evenement-日本-🎉"),
		key("Delivery-ID"), key("delivery-id"), key("DELIVERY-ID"),
	}
	claims := make([]webhook.Claim, len(keys))
	for i, k := range keys {
		c := claim(t, s, k, longLease)
		if c.Result != webhook.Claimed {
			t.Fatalf("Claim(%.40q) = %v, want Claimed: keys collide (or a one-byte key is left over from another run)", k, c.Result)
		}
		claims[i] = c
	}
	noErr(t, "Complete", s.Complete(ctx(t), claims[0], ShortLease))
	for _, k := range keys[1:] {
		expect(t, s, k, webhook.InProgress)
	}
	for _, c := range claims[1:] {
		noErr(t, "Release", s.Release(ctx(t), c))
	}
}
