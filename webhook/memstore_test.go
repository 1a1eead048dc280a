package webhook

import (
	"context"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMemoryStoreSteps walks a store of 3 through claims, expiry and
// eviction at named instants (fake time).
func TestMemoryStoreSteps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewMemoryStore(3)
		var evicted []*EvictionError
		s.OnEvict(func(_ context.Context, err *EvictionError) { evicted = append(evicted, err) })
		held := map[string]Claim{}
		claim := func(key string) func() (ClaimResult, error) {
			return func() (ClaimResult, error) {
				c, err := s.Claim(ctx, key, time.Minute)
				if c.Result == Claimed {
					held[key] = c
				}
				return c.Result, err
			}
		}
		steps := []struct {
			name string
			do   func() (ClaimResult, error)
			want ClaimResult
			err  error
		}{
			{"claim a", claim("a"), Claimed, nil},
			{"a in progress", claim("a"), InProgress, nil},
			{"complete a", func() (ClaimResult, error) { return Done, s.Complete(ctx, held["a"], time.Hour) }, Done, nil},
			{"a done", claim("a"), Done, nil},
			{"complete a again: lost", func() (ClaimResult, error) { return Done, s.Complete(ctx, held["a"], time.Hour) }, Done, ErrLeaseLost},
			{"claim b", claim("b"), Claimed, nil},
			{"release b", func() (ClaimResult, error) { return Claimed, s.Release(ctx, held["b"]) }, Claimed, nil},
			{"b again after release", claim("b"), Claimed, nil},
			{"claim c", claim("c"), Claimed, nil},
			{"full: d evicts the done a, reported", func() (ClaimResult, error) {
				r, err := s.Claim(ctx, "d", time.Minute)
				require.Len(t, evicted, 1)
				assert.Equal(t, "a", evicted[0].Key)
				assert.Equal(t, time.Hour, evicted[0].Left)
				assert.ErrorIs(t, evicted[0], ErrEvictedEarly)
				return r.Result, err
			}, Claimed, nil},
			{"full of claims: e refused", claim("e"), 0, ErrStoreFull},
			{"2 min later the leases ran out: e fits, not reported", func() (ClaimResult, error) {
				time.Sleep(2 * time.Minute)
				r, err := s.Claim(ctx, "e", time.Minute)
				assert.Len(t, evicted, 1)
				return r.Result, err
			}, Claimed, nil},
			{"b's lease ran out: claimable again", claim("b"), Claimed, nil},
			{"extend b by an hour", func() (ClaimResult, error) { return Claimed, s.Extend(ctx, held["b"], time.Hour) }, Claimed, nil},
			{"30 min later b is still held", func() (ClaimResult, error) {
				time.Sleep(30 * time.Minute)
				return claim("b")()
			}, InProgress, nil},
		}
		for _, st := range steps {
			got, err := st.do()
			assert.Equal(t, st.want, got, st.name)
			if st.err != nil {
				assert.ErrorIs(t, err, st.err, st.name)
			} else {
				assert.NoError(t, err, st.name)
			}
			assert.LessOrEqual(t, s.Len(), 3, st.name)
		}
		_, err := s.Claim(ctx, "z", 0)
		assert.Error(t, err, "a zero lease is refused")
	})
}

// TestMemoryStoreCompleteAfterEvictionStaysBounded: in a store of 2, a
// claim that was dropped (its lease ran out) cannot be completed back in:
// Complete says ErrLeaseLost and the store keeps its bound.
func TestMemoryStoreCompleteAfterEvictionStaysBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		s := NewMemoryStore(2)
		first, err := s.Claim(ctx, "first", time.Second)
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		for _, k := range []string{"second", "third"} {
			_, err := s.Claim(ctx, k, time.Minute)
			require.NoError(t, err)
		}
		assert.ErrorIs(t, s.Complete(ctx, first, time.Hour), ErrLeaseLost)
		assert.ErrorIs(t, s.Release(ctx, first), ErrLeaseLost)
		assert.Equal(t, 2, s.Len())
	})
}

// TestMemoryStoreBounded: 100 000 events through a store of 1 000 keep it
// at its bound, and each drop of a done key inside its keep is reported.
func TestMemoryStoreBounded(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(1000)
	evictions := 0
	s.OnEvict(func(context.Context, *EvictionError) { evictions++ })
	for i := range 100_000 {
		c, err := s.Claim(ctx, strconv.Itoa(i), time.Minute)
		if err != nil || c.Result != Claimed {
			t.Fatalf("claim %d: %v, %v", i, c.Result, err)
		}
		if err := s.Complete(ctx, c, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	assert.Equal(t, 1000, s.Len())
	assert.Equal(t, 99_000, evictions)
}

// TestMemoryStoreUnfinishedClaimsDoNotSlowClaims: with the store full of
// unfinished claims but for one done key, making room finds that key at
// once (a heap, not a scan); the benchmark shows the cost.
func TestMemoryStoreUnfinishedClaimsDoNotSlowClaims(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryStore(1000)
	for i := range 999 {
		_, err := s.Claim(ctx, "held-"+strconv.Itoa(i), time.Hour)
		require.NoError(t, err)
	}
	for i := range 10 {
		c, err := s.Claim(ctx, "new-"+strconv.Itoa(i), time.Hour)
		require.NoError(t, err)
		require.NoError(t, s.Complete(ctx, c, time.Hour))
	}
	assert.Equal(t, 1000, s.Len())
	_, err := s.Claim(ctx, "one-more-held", time.Hour)
	require.NoError(t, err)
	_, err = s.Claim(ctx, "refused", time.Hour)
	assert.ErrorIs(t, err, ErrStoreFull)
}

// BenchmarkMemoryStoreClaimBehindUnfinished: 99 999 unfinished claims at
// the front of the store, then claim and complete new events: each claim
// evicts the one done key in O(log n).
func BenchmarkMemoryStoreClaimBehindUnfinished(b *testing.B) {
	ctx := context.Background()
	s := NewMemoryStore(100_000)
	for i := range 99_999 {
		if _, err := s.Claim(ctx, "held-"+strconv.Itoa(i), time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "k" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c, err := s.Claim(ctx, keys[i%len(keys)], time.Hour)
		if err != nil || c.Result != Claimed {
			b.Fatal(c.Result, err)
		}
		if err := s.Complete(ctx, c, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
