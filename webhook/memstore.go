package webhook

import (
	"container/heap"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultMaxEvents bounds the in-memory store.
const DefaultMaxEvents = 100_000

// ErrEvictedEarly is what an [*EvictionError] wraps: a full [MemoryStore]
// forgot a processed event before its keep ran out.
var ErrEvictedEarly = errors.New("webhook: processed event forgotten before its keep ran out")

// EvictionError reports that a full [MemoryStore] dropped a done key whose
// keep had not run out, to make room for a new claim: a redelivery of that
// event would now be processed again. It means the store is too small for
// the traffic: raise its max (or use a shared store).
type EvictionError struct {
	// Key is the dropped key.
	Key string
	// Left is how much of its keep remained.
	Left time.Duration
}

func (e *EvictionError) Error() string {
	return fmt.Sprintf("%v: key %.16s… dropped %v early; the store is full, raise its max", ErrEvictedEarly, e.Key, e.Left.Round(time.Second))
}

// Unwrap returns [ErrEvictedEarly].
func (e *EvictionError) Unwrap() error { return ErrEvictedEarly }

// MemoryStore is the default [Store]: in memory, bounded and expiring. It
// is safe for concurrent use; its zero value is not usable, call
// [NewMemoryStore].
//
// It suits a single process: several replicas of a receiver each have
// their own and each processes the same event, so they need a shared store
// (webhook/pgstore, webhook/redisstore). Its bound shortens the dedupe
// window under load: once it holds max keys, a new claim drops the done key
// closest to its expiry, and a redelivery of that event is processed again.
// With the default of 100 000 keys and a keep of 72 h, more than about 23
// distinct events a minute sustained is past the bound; [MemoryStore.OnEvict]
// reports each such drop so that an operator can size it.
//
// Every operation costs O(log n): claims and done keys are kept in two
// heaps ordered by expiry, so an expired or done key is found without a
// scan, however many claims are in progress.
type MemoryStore struct {
	mu      sync.Mutex
	max     int
	items   map[string]*memEntry
	claims  expiryHeap // held claims, the first to expire on top
	done    expiryHeap // done keys, the first to expire on top
	onEvict func(context.Context, *EvictionError)
}

type memEntry struct {
	key     string
	token   string // of the holder; "" once done
	expires time.Time
	done    bool
	index   int // in claims or done
}

// NewMemoryStore returns a store that holds at most max keys (zero or
// negative: [DefaultMaxEvents]). When full, a new claim drops an expired key
// if there is one, else the done key closest to its expiry (reported to
// OnEvict); only when every key is a held, unexpired claim is the claim
// refused with [ErrStoreFull].
func NewMemoryStore(max int) *MemoryStore {
	if max <= 0 {
		max = DefaultMaxEvents
	}
	return &MemoryStore{max: max, items: make(map[string]*memEntry)}
}

// OnEvict sets a function called, outside the store's lock, each time a
// full store drops a done key before its keep ran out. ctx is that of the
// Claim that made room. [Handler] sets it on the store it creates by
// default, reporting to [WithErrorHandler]; a nil f removes it.
func (m *MemoryStore) OnEvict(f func(ctx context.Context, err *EvictionError)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onEvict = f
}

// Claim implements [Store]. A lease of zero or less is an error.
func (m *MemoryStore) Claim(ctx context.Context, key string, lease time.Duration) (Claim, error) {
	if lease <= 0 {
		return Claim{}, fmt.Errorf("webhook: lease %v is not positive", lease)
	}
	token := rand.Text()
	m.mu.Lock()
	now := time.Now()
	if e, ok := m.items[key]; ok {
		if now.Before(e.expires) {
			res := InProgress
			if e.done {
				res = Done
			}
			m.mu.Unlock()
			return Claim{Key: key, Result: res}, nil
		}
		m.remove(e)
	}
	var evicted *EvictionError
	if len(m.items) >= m.max {
		var ok bool
		if evicted, ok = m.makeRoom(now); !ok {
			m.mu.Unlock()
			return Claim{}, ErrStoreFull
		}
	}
	e := &memEntry{key: key, token: token, expires: now.Add(lease)}
	m.items[key] = e
	heap.Push(&m.claims, e)
	onEvict := m.onEvict
	m.mu.Unlock()
	if evicted != nil && onEvict != nil {
		onEvict(ctx, evicted)
	}
	return Claim{Key: key, Token: token, Result: Claimed}, nil
}

// Extend implements [Store]. A lease of zero or less is an error.
func (m *MemoryStore) Extend(_ context.Context, c Claim, lease time.Duration) error {
	if lease <= 0 {
		return fmt.Errorf("webhook: lease %v is not positive", lease)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	e, err := m.held(c, now)
	if err != nil {
		return err
	}
	e.expires = now.Add(lease)
	heap.Fix(&m.claims, e.index)
	return nil
}

// Complete implements [Store]. A keep of zero or less forgets the key at
// once, as Release does.
func (m *MemoryStore) Complete(_ context.Context, c Claim, keep time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	e, err := m.held(c, now)
	if err != nil {
		return err
	}
	m.remove(e)
	if keep > 0 {
		e.done, e.token, e.expires = true, "", now.Add(keep)
		m.items[e.key] = e
		heap.Push(&m.done, e)
	}
	return nil
}

// Release implements [Store].
func (m *MemoryStore) Release(_ context.Context, c Claim) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, err := m.held(c, time.Now())
	if err != nil {
		return err
	}
	m.remove(e)
	return nil
}

// Len returns the number of keys held, expired ones not yet dropped
// included; it never exceeds the store's max.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// held returns the entry of an unexpired claim held by c.Token.
func (m *MemoryStore) held(c Claim, now time.Time) (*memEntry, error) {
	e, ok := m.items[c.Key]
	if !ok || e.done || c.Token == "" || e.token != c.Token || !now.Before(e.expires) {
		return nil, ErrLeaseLost
	}
	return e, nil
}

// makeRoom drops one key: an expired one if any, else the done key closest
// to its expiry, which it returns as an EvictionError. It reports false when
// every key is an unexpired claim.
func (m *MemoryStore) makeRoom(now time.Time) (*EvictionError, bool) {
	for _, h := range []*expiryHeap{&m.done, &m.claims} {
		if len(*h) > 0 && !now.Before((*h)[0].expires) {
			m.remove((*h)[0])
			return nil, true
		}
	}
	if len(m.done) == 0 {
		return nil, false
	}
	e := m.done[0]
	m.remove(e)
	return &EvictionError{Key: e.key, Left: e.expires.Sub(now)}, true
}

func (m *MemoryStore) remove(e *memEntry) {
	delete(m.items, e.key)
	if e.done {
		heap.Remove(&m.done, e.index)
	} else {
		heap.Remove(&m.claims, e.index)
	}
}

// expiryHeap is a container/heap of entries, the earliest expiry on top.
type expiryHeap []*memEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *expiryHeap) Push(x any) {
	e := x.(*memEntry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
