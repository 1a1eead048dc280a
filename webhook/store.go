package webhook

import (
	"container/list"
	"context"
	"errors"
	"sync"
	"time"
)

// ClaimResult is the answer of [Store.Claim].
type ClaimResult int

const (
	// Claimed: the caller now owns the event and must Complete or Release it.
	Claimed ClaimResult = iota + 1
	// InProgress: another delivery of the event holds an unexpired claim.
	InProgress
	// Done: the event was processed already.
	Done
)

// ErrStoreFull is returned by the in-memory store when it holds its maximum
// of events and none can be evicted (all are in progress).
var ErrStoreFull = errors.New("webhook: dedupe store full")

// Store records which events are being processed and which are done, so
// that [Handler] processes each event id once. A database or Redis can back
// it: Claim must be an atomic insert-if-absent with expiry (INSERT ... ON
// CONFLICT DO NOTHING, SET NX PX).
type Store interface {
	// Claim marks id as in progress for lease, unless it is already in
	// progress (InProgress) or done (Done). A claim whose lease ran out
	// counts as absent, so that an event whose processor died is retried.
	Claim(ctx context.Context, id string, lease time.Duration) (ClaimResult, error)
	// Complete marks a claimed id as done, remembered for keep.
	Complete(ctx context.Context, id string, keep time.Duration) error
	// Release forgets a claimed id, so that a redelivery processes it.
	Release(ctx context.Context, id string) error
}

// DefaultMaxEvents bounds the in-memory store.
const DefaultMaxEvents = 100_000

// MemoryStore is the default [Store]: in memory, bounded, expiring. It is
// safe for concurrent use; its zero value is not usable, call
// [NewMemoryStore]. It suits a single process; several replicas of a
// receiver need a shared store.
type MemoryStore struct {
	mu    sync.Mutex
	max   int
	now   func() time.Time
	items map[string]*list.Element
	order *list.List // of *entry, oldest first
}

type entry struct {
	id      string
	done    bool
	expires time.Time
}

// NewMemoryStore returns a store that holds at most max events (zero or
// negative: [DefaultMaxEvents]). When full, it drops the oldest entry that
// is done or expired; it refuses a claim with ErrStoreFull only when every
// entry is in progress.
func NewMemoryStore(max int) *MemoryStore {
	if max <= 0 {
		max = DefaultMaxEvents
	}
	return &MemoryStore{max: max, now: time.Now, items: make(map[string]*list.Element), order: list.New()}
}

// Claim implements Store.
func (m *MemoryStore) Claim(_ context.Context, id string, lease time.Duration) (ClaimResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if el, ok := m.items[id]; ok {
		e := el.Value.(*entry)
		if now.Before(e.expires) {
			if e.done {
				return Done, nil
			}
			return InProgress, nil
		}
		m.remove(el)
	}
	if len(m.items) >= m.max && !m.evict(now) {
		return 0, ErrStoreFull
	}
	m.items[id] = m.order.PushBack(&entry{id: id, expires: now.Add(lease)})
	return Claimed, nil
}

// Complete implements Store.
func (m *MemoryStore) Complete(_ context.Context, id string, keep time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[id]
	if !ok {
		el = m.order.PushBack(&entry{id: id})
		m.items[id] = el
	}
	e := el.Value.(*entry)
	e.done, e.expires = true, m.now().Add(keep)
	return nil
}

// Release implements Store.
func (m *MemoryStore) Release(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if el, ok := m.items[id]; ok && !el.Value.(*entry).done {
		m.remove(el)
	}
	return nil
}

// Len returns the number of events held, expired ones included.
func (m *MemoryStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// evict makes room for one entry: first the entry at the front if it
// expired, else the oldest done one. It reports whether there is room now.
// Entries are in insertion order, so the front is usually done or expired
// and this costs O(1); expired entries further back go when they are looked
// up or reach the front.
func (m *MemoryStore) evict(now time.Time) bool {
	for el := m.order.Front(); el != nil; el = el.Next() {
		if e := el.Value.(*entry); e.done || !now.Before(e.expires) {
			m.remove(el)
			return true
		}
	}
	return false
}

func (m *MemoryStore) remove(el *list.Element) {
	delete(m.items, el.Value.(*entry).id)
	m.order.Remove(el)
}
