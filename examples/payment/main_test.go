package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// TestRun runs the example's whole flow and checks its numbers, so that the
// complete example cannot silently rot.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	s, err := run(context.Background(), &out)
	require.NoError(t, err, out.String())

	assert.Equal(t, 8, s.Orders)
	assert.Equal(t, 7, s.Succeeded)
	assert.Equal(t, 0, s.Pending, "pending orders are charged once the gateway is back")
	assert.Equal(t, 1, s.Failed, "the declined card")
	assert.Equal(t, s.Succeeded, s.Charges, "no order charged twice, none lost")
	assert.Equal(t, 9, s.WebhooksApplied, "7 payments, 1 decline, 1 refund: each once")
	assert.Equal(t, 13, s.WebhooksReceived, "every other event was delivered twice")
	assert.GreaterOrEqual(t, s.Attempts, s.Orders+2, "order-3 and order-4 took two attempts")
	for _, o := range s.Book {
		if o.State == "confirmed" || o.State == "refunded" {
			assert.Equal(t, 1, o.Webhooks, o.ID)
		}
	}
	assert.NotContains(t, out.String(), demoToken, "the token is never logged")
	assert.True(t, strings.Contains(out.String(), "no order was charged twice"))
}
