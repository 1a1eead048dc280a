package pgstore_test

import (
	"testing"

	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/storetest"
)

// TestConformance runs the webhook.Store conformance suite, each subtest
// against a table of its own.
func TestConformance(t *testing.T) {
	pool := newPool(t, testenv.Postgres(t))
	storetest.Run(t, func(t *testing.T) webhook.Store {
		s, _ := newStoreOn(t, pool)
		return s
	})
}
