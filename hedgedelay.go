package resilient

import (
	"math/bits"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// hedgeWarmup is how many latencies of a host the adaptive delay needs
	// before it sends hedges to it.
	hedgeWarmup = 20
	// hedgeWindow is how many latencies make the current histogram; the
	// percentile is taken over the current and the previous one, so over
	// the last 128 to 256 attempts.
	hedgeWindow = 128
	// latencyBuckets cover 0 to 2^40 µs (12 days) in steps of at most a
	// quarter of a power of two.
	latencyBuckets = 160
)

// latencies keeps the recent latencies of the hosts of one client, for
// the adaptive hedge delay: per host key, bounded like the breaker set.
type latencies struct {
	keys *breakerSet // names the host
	max  int
	tick atomic.Int64

	mu sync.Mutex
	m  map[breakerKey]*hostLatency
}

// hostLatency is a log-linear histogram of one host's recent latencies:
// the current window and the one before.
type hostLatency struct {
	mu        sync.Mutex
	cur, prev [latencyBuckets]uint32
	n, prevN  uint32
	used      atomic.Int64
}

func newLatencies(keys *breakerSet, max int) *latencies {
	return &latencies{keys: keys, max: max, m: make(map[breakerKey]*hostLatency)}
}

// host returns the histogram of req's host, creating it if needed.
func (l *latencies) host(req *http.Request) *hostLatency {
	k := l.keys.key(req)
	l.mu.Lock()
	h, ok := l.m[k]
	if !ok {
		if len(l.m) >= l.max {
			l.shrink()
		}
		h = new(hostLatency)
		l.m[k] = h
	}
	l.mu.Unlock()
	h.used.Store(l.tick.Add(1))
	return h
}

// shrink drops the least recently used hosts down to three quarters of
// max. Called with mu held.
func (l *latencies) shrink() {
	evict(l.m, l.max*3/4, func(h *hostLatency) int64 { return h.used.Load() })
}

// record adds one latency.
func (h *hostLatency) record(d time.Duration) {
	i := latencyBucket(d)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cur[i]++
	if h.n++; h.n >= hedgeWindow {
		h.prev, h.prevN = h.cur, h.n
		h.cur, h.n = [latencyBuckets]uint32{}, 0
	}
}

// percentile returns the q-th percentile of the recent latencies (the
// upper bound of its bucket, so never below the truth), and false while
// fewer than hedgeWarmup were recorded.
func (h *hostLatency) percentile(q float64) (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	total := h.n + h.prevN
	if total < hedgeWarmup {
		return 0, false
	}
	target := uint32(q*float64(total) + 0.999999)
	var seen uint32
	for i := range latencyBuckets {
		if seen += h.cur[i] + h.prev[i]; seen >= target {
			return bucketCeil(i), true
		}
	}
	return bucketCeil(latencyBuckets - 1), true
}

// latencyBucket is the bucket of d: microseconds 0 to 3 each have one,
// then every power of two is cut in four.
func latencyBucket(d time.Duration) int {
	us := uint64(max(d, 0) / time.Microsecond)
	if us < 4 {
		return int(us)
	}
	e := bits.Len64(us) - 1 // 2 or more
	i := 4 + (e-2)*4 + int(us>>(e-2)&3)
	return min(i, latencyBuckets-1)
}

// bucketCeil is the upper bound of bucket i.
func bucketCeil(i int) time.Duration {
	if i < 4 {
		return time.Duration(i+1) * time.Microsecond
	}
	e, m := (i-4)/4+2, (i-4)%4
	return time.Duration(uint64(5+m)<<(e-2)) * time.Microsecond
}
