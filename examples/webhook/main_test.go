package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestRun runs the sender and receiver: 8 deliveries, 3 events processed.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	processed, err := run(&out)
	require.NoError(t, err)
	assert.Equal(t, 3, processed)
	got := out.String()
	assert.Contains(t, got, "forged: body changed after signing → 401 Unauthorized")
	assert.Contains(t, got, "replayed from an hour ago → 401 Unauthorized")
	assert.Contains(t, got, "refund.created (database down) → 500 Internal Server Error")
	assert.Contains(t, got, "42: refunded 1200")
}
