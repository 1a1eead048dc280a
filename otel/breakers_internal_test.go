package resilientotel

import (
	"slices"
	"testing"

	"github.com/resilient-go/resilient"
)

// TestBreakerStatesBound fills a map of three and checks who makes room:
// a closed breaker first, else the one whose last transition is oldest.
func TestBreakerStatesBound(t *testing.T) {
	steps := []struct {
		key  string
		to   resilient.State
		want []string // keys kept, sorted
	}{
		{"a", resilient.StateOpen, []string{"a"}},
		{"b", resilient.StateOpen, []string{"a", "b"}},
		{"c", resilient.StateClosed, []string{"a", "b", "c"}},
		{"d", resilient.StateOpen, []string{"a", "b", "d"}},     // c is closed: it goes
		{"a", resilient.StateHalfOpen, []string{"a", "b", "d"}}, // known key: no eviction
		{"e", resilient.StateOpen, []string{"a", "d", "e"}},     // none closed: b is oldest
		{"f", resilient.State(-1), []string{"a", "d", "e"}},     // unknown state: ignored
		{"g", resilient.State(3), []string{"a", "d", "e"}},
	}
	b := newBreakerStates(3)
	for i, s := range steps {
		b.set(s.key, s.to)
		var keys []string
		for k := range b.m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		if !slices.Equal(keys, s.want) || b.size() != len(s.want) {
			t.Errorf("step %d (%s → %v): kept %v, want %v", i, s.key, s.to, keys, s.want)
		}
	}
	if got := b.m["a"].state; got != resilient.StateHalfOpen {
		t.Errorf("a is %v, want half-open", got)
	}
}
