package soak_test

import (
	"context"
	"fmt"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

// slowStoreCall is how long a store call may take before it is noted with
// its event, to explain a duplicate: a claim lost because a call outlived
// the lease.
const slowStoreCall = 500 * time.Millisecond

// eventID is the context key of the id of the event a request delivers.
type eventID struct{}

// watchedStore is a webhook.Store that notes slow calls with their events.
// It changes nothing else: every call goes to the store as it came.
type watchedStore struct {
	webhook.Store
	h *hooks
}

func (s watchedStore) Claim(ctx context.Context, key string, lease time.Duration) (webhook.Claim, error) {
	defer s.note(ctx, "Claim", time.Now())
	return s.Store.Claim(ctx, key, lease)
}

func (s watchedStore) Extend(ctx context.Context, c webhook.Claim, lease time.Duration) error {
	defer s.note(ctx, "Extend", time.Now())
	return s.Store.Extend(ctx, c, lease)
}

func (s watchedStore) Complete(ctx context.Context, c webhook.Claim, keep time.Duration) error {
	defer s.note(ctx, "Complete", time.Now())
	return s.Store.Complete(ctx, c, keep)
}

func (s watchedStore) Release(ctx context.Context, c webhook.Claim) error {
	defer s.note(ctx, "Release", time.Now())
	return s.Store.Release(ctx, c)
}

// note keeps "Complete took 1.2s" with the event of ctx when the call
// took longer than slowStoreCall.
func (s watchedStore) note(ctx context.Context, op string, began time.Time) {
	d := time.Since(began)
	id, _ := ctx.Value(eventID{}).(string)
	if d < slowStoreCall || id == "" {
		return
	}
	s.h.mu.Lock()
	defer s.h.mu.Unlock()
	if ev := s.h.events[id]; ev != nil {
		ev.reported = append(ev.reported, fmt.Sprintf("%s took %v", op, d.Round(time.Millisecond)))
	}
}
