package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/resilient-go/resilient"
)

// PaymentGateway is a typed client of the gateway, on a resilient client.
type PaymentGateway struct {
	baseURL string
	token   string
	http    *http.Client
}

// Charge is the gateway's answer to a payment.
type Charge struct {
	ID     string `json:"id"`
	Status string `json:"status"` // "succeeded", or "pending" when the gateway could not be reached
	Amount int    `json:"amount"`
}

// ErrDeclined is returned for a payment the gateway refused.
var ErrDeclined = errors.New("payment declined")

// pendingBody is what the fallback answers when the gateway cannot be
// reached: the order is recorded as pending instead of failing.
const pendingBody = `{"status":"pending"}`

// NewPaymentGateway reads PAYMENT_GATEWAY_URL and PAYMENT_GATEWAY_TOKEN,
// with the demo's defaults, and builds the client: 500 ms per attempt, 5 s
// per call, 3 attempts, idempotency keys, a breaker per host that opens
// after 3 failures for 1 s, and a fallback that turns "cannot reach the
// gateway" into a pending payment. The token is sent, never logged.
func NewPaymentGateway(defaultURL, defaultToken string, logger *slog.Logger, observe func(context.Context, resilient.Event)) *PaymentGateway {
	g := &PaymentGateway{baseURL: env("PAYMENT_GATEWAY_URL", defaultURL), token: env("PAYMENT_GATEWAY_TOKEN", defaultToken)}
	g.http = resilient.New(clientOptions(logger, observe)...)
	return g
}

// clientOptions are the layers of the gateway's client. The tests stack
// them over an in-memory transport that misbehaves on purpose.
func clientOptions(logger *slog.Logger, observe func(context.Context, resilient.Event)) []resilient.Option {
	return []resilient.Option{
		resilient.Recommended(),
		resilient.WithAttemptTimeout(500 * time.Millisecond),
		resilient.WithTotalTimeout(5 * time.Second),
		resilient.WithCircuitBreaker(resilient.BreakerPolicy{ConsecutiveFailures: 3, OpenTimeout: time.Second}),
		resilient.WithFallback(func(req *http.Request, err error) (*http.Response, error) {
			return &http.Response{StatusCode: http.StatusAccepted, Status: "202 Accepted (fallback)",
				Header: http.Header{"Content-Type": {"application/json"}}, Request: req,
				Body: io.NopCloser(strings.NewReader(pendingBody))}, nil
		}),
		resilient.WithLogger(logger),
		resilient.WithObserver(observe),
	}
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ProcessPayment charges an order. The idempotency key is derived from the
// order and the operation, so that a retry, a redelivered job or a restart
// never charges twice.
func (g *PaymentGateway) ProcessPayment(ctx context.Context, orderID string, amount int, card string) (Charge, error) {
	var c Charge
	err := g.post(ctx, "/v1/charges", orderID+"-charge", map[string]any{"order_id": orderID, "amount": amount, "card": card}, &c)
	return c, err
}

// Refund refunds a charge.
func (g *PaymentGateway) Refund(ctx context.Context, orderID, chargeID string, amount int) error {
	return g.post(ctx, "/v1/refunds", orderID+"-refund", map[string]any{"order_id": orderID, "charge_id": chargeID, "amount": amount}, nil)
}

func (g *PaymentGateway) post(ctx context.Context, path, key string, in, out any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return err
	}
	ctx = resilient.ContextWithIdempotencyKey(ctx, key)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.baseURL+path, bytesReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := g.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	switch {
	case resp.StatusCode == http.StatusPaymentRequired:
		return ErrDeclined
	case resp.StatusCode >= 300:
		return fmt.Errorf("gateway: %s: %s", resp.Status, bytes.TrimSpace(data))
	case out != nil:
		return json.Unmarshal(data, out)
	}
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
