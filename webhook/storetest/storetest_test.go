package storetest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestMemoryStore runs the conformance suite against the in-memory store.
func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(*testing.T) webhook.Store { return webhook.NewMemoryStore(0) })
}

// TestMemoryStoreSmall runs it against a store just large enough for
// every subtest.
func TestMemoryStoreSmall(t *testing.T) {
	storetest.Run(t, func(*testing.T) webhook.Store { return webhook.NewMemoryStore(10) })
}
