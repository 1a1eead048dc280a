package redisstore_test

import (
	"testing"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/storetest"
)

// TestConformance runs the Store conformance suite against a real Redis,
// each subtest under its own prefix.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) webhook.Store {
		s, _, _ := newStore(t)
		return s
	})
}
