package resilient

import (
	"cmp"
	"slices"
)

// evict deletes entries of m, lowest rank first, until keep remain. rank
// is read once per entry, so entries whose state changes meanwhile cannot
// upset the sort. The bounded per-host maps share it: breakers and hedging
// latencies rank by a logical clock of last use (open breakers offset to go
// last), closed throttle gates by when they open again.
func evict[K comparable, V any](m map[K]V, keep int, rank func(V) int64) {
	if len(m) <= keep {
		return
	}
	type ranked struct {
		k K
		r int64
	}
	all := make([]ranked, 0, len(m))
	for k, v := range m {
		all = append(all, ranked{k, rank(v)})
	}
	slices.SortFunc(all, func(a, b ranked) int { return cmp.Compare(a.r, b.r) })
	for _, e := range all[:len(all)-keep] {
		delete(m, e.k)
	}
}
