package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/resilienttest"
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

// TestProcessPaymentUnderFaults tests the gateway client alone, one fault
// plan at a time: the fake gateway's API is served in memory under the
// faults of resilienttest, inside a synctest bubble, so the 1 s Retry-After
// and the 500 ms attempt timeouts take no real time.
func TestProcessPaymentUnderFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults func() *resilienttest.Faults
		card   string

		wantStatus   string // the charge's status, when no error
		wantErr      error
		wantAttempts int
		wantCharges  int // charges the gateway made
		// The call's duration in fake time lies in [minTime, maxTime].
		minTime, maxTime time.Duration
	}{
		{
			name: "throttled, then the connection drops: charged once",
			faults: func() *resilienttest.Faults {
				return resilienttest.Script(resilienttest.Status(503, "Retry-After", "1"), resilienttest.Reset())
			},
			card: goodCard, wantStatus: "succeeded", wantAttempts: 3, wantCharges: 1,
			minTime: time.Second, maxTime: 1200 * time.Millisecond,
		},
		{
			name:   "answer lost after the charge: the retry is answered from the key, not charged again",
			faults: func() *resilienttest.Faults { return resilienttest.Script(resilienttest.LostResponse()) },
			card:   goodCard, wantStatus: "succeeded", wantAttempts: 2, wantCharges: 1,
			maxTime: 100 * time.Millisecond,
		},
		{
			name:   "gateway down: the order is pending",
			faults: func() *resilienttest.Faults { return resilienttest.Always(resilienttest.Reset()) },
			card:   goodCard, wantStatus: "pending", wantAttempts: 3, wantCharges: 0,
			maxTime: 300 * time.Millisecond,
		},
		{
			name:   "gateway stalls: pending after three attempt timeouts",
			faults: func() *resilienttest.Faults { return resilienttest.Always(resilienttest.Stall()) },
			card:   goodCard, wantStatus: "pending", wantAttempts: 3, wantCharges: 0,
			minTime: 1500 * time.Millisecond, maxTime: 1800 * time.Millisecond,
		},
		{
			name:   "declined card: not retried",
			faults: func() *resilienttest.Faults { return resilienttest.Script() },
			card:   declinedCard, wantErr: ErrDeclined, wantAttempts: 1, wantCharges: 0,
		},
		{
			name:   "answer cut short: the caller sees the error, the gateway charged",
			faults: func() *resilienttest.Faults { return resilienttest.Script(resilienttest.Truncate(5)) },
			card:   goodCard, wantErr: io.ErrUnexpectedEOF, wantAttempts: 1, wantCharges: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				gw := newGateway(demoToken, webhookSecret)
				faults := tt.faults()
				var rec resilienttest.Recorder
				var logs bytes.Buffer
				logger := slog.New(slog.NewTextHandler(&logs, nil))
				pay := &PaymentGateway{baseURL: "http://gateway.test", token: demoToken, http: &http.Client{
					Transport: resilient.NewTransport(rec.Transport(faults.Transport(resilienttest.InMemory(gw.handler()))),
						clientOptions(logger, nil)...),
				}}

				start := time.Now()
				c, err := pay.ProcessPayment(t.Context(), "order-9", 1200, tt.card)
				took := time.Since(start)
				if tt.wantErr != nil {
					require.ErrorIs(t, err, tt.wantErr)
				} else {
					require.NoError(t, err)
					assert.Equal(t, tt.wantStatus, c.Status)
				}
				assert.GreaterOrEqual(t, took, tt.minTime)
				assert.LessOrEqual(t, took, tt.maxTime)
				assert.Equal(t, tt.wantCharges, gw.chargesMade())
				assert.NotContains(t, logs.String(), demoToken, "the token is never logged")

				attempts := rec.Attempts()
				require.Len(t, attempts, tt.wantAttempts)
				for _, a := range attempts {
					assert.Equal(t, "order-9-charge", a.IdempotencyKey())
					assert.Equal(t, "Bearer "+demoToken, a.Header.Get("Authorization"))
					assert.JSONEq(t, `{"order_id":"order-9","amount":1200,"card":"`+tt.card+`"}`, string(a.Body))
				}
			})
		})
	}
}

// TestChargeAgainAfterCutAnswer: when the answer to a charge was cut
// short, charging the order again sends the same idempotency key and gets
// the first charge back instead of a second one.
func TestChargeAgainAfterCutAnswer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gw := newGateway(demoToken, webhookSecret)
		faults := resilienttest.Script(resilienttest.Truncate(5))
		pay := &PaymentGateway{baseURL: "http://gateway.test", token: demoToken, http: &http.Client{
			Transport: resilient.NewTransport(faults.Transport(resilienttest.InMemory(gw.handler())),
				clientOptions(slog.New(slog.DiscardHandler), nil)...),
		}}
		_, err := pay.ProcessPayment(t.Context(), "order-9", 1200, goodCard)
		require.ErrorIs(t, err, io.ErrUnexpectedEOF)
		c, err := pay.ProcessPayment(t.Context(), "order-9", 1200, goodCard)
		require.NoError(t, err)
		assert.Equal(t, "succeeded", c.Status)
		assert.Equal(t, "ch_1", c.ID)
		assert.Equal(t, 1, gw.chargesMade())
	})
}
