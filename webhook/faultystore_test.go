package webhook

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// faultyStore is a MemoryStore whose methods a test can replace, to make a
// store fail, hang or answer nonsense.
type faultyStore struct {
	*MemoryStore
	claim    func(ctx context.Context, key string, lease time.Duration) (Claim, error)
	extend   func(ctx context.Context, c Claim, lease time.Duration) error
	complete func(ctx context.Context, c Claim, keep time.Duration) error
	release  func(ctx context.Context, c Claim) error

	extends, completes, releases atomic.Int32
}

func newFaultyStore() *faultyStore { return &faultyStore{MemoryStore: NewMemoryStore(0)} }

func (s *faultyStore) Claim(ctx context.Context, key string, lease time.Duration) (Claim, error) {
	if s.claim != nil {
		return s.claim(ctx, key, lease)
	}
	return s.MemoryStore.Claim(ctx, key, lease)
}

func (s *faultyStore) Extend(ctx context.Context, c Claim, lease time.Duration) error {
	s.extends.Add(1)
	if s.extend != nil {
		return s.extend(ctx, c, lease)
	}
	return s.MemoryStore.Extend(ctx, c, lease)
}

func (s *faultyStore) Complete(ctx context.Context, c Claim, keep time.Duration) error {
	s.completes.Add(1)
	if s.complete != nil {
		return s.complete(ctx, c, keep)
	}
	return s.MemoryStore.Complete(ctx, c, keep)
}

func (s *faultyStore) Release(ctx context.Context, c Claim) error {
	s.releases.Add(1)
	if s.release != nil {
		return s.release(ctx, c)
	}
	return s.MemoryStore.Release(ctx, c)
}

// hang blocks until ctx ends, as a store stuck on a locked row does.
func hang(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// reported collects what the handler hands to WithErrorHandler.
type reported struct {
	mu     sync.Mutex
	errs   []error
	events []Event
}

func (r *reported) option() HandlerOption {
	return WithErrorHandler(func(_ context.Context, e Event, err error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.errs = append(r.errs, err)
		r.events = append(r.events, e)
	})
}

func (r *reported) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}
