package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"

	"github.com/resilient-go/resilient/webhook"
)

// receiver handles the gateway's webhooks: it verifies them, dispatches by
// event type and updates each order exactly once.
type receiver struct {
	orders    *orders
	processed atomic.Int32
	received  atomic.Int32
}

func (rc *receiver) handler(secret string) (http.Handler, error) {
	v, err := webhook.StandardWebhooks(secret)
	if err != nil {
		return nil, err
	}
	h := webhook.Handler(v, rc.process)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.received.Add(1)
		h.ServeHTTP(w, r)
	}), nil
}

func (rc *receiver) process(_ context.Context, e webhook.Event) error {
	var ev struct {
		Type string `json:"type"`
		Data struct {
			OrderID string `json:"order_id"`
		} `json:"data"`
	}
	if err := json.Unmarshal(e.Body, &ev); err != nil {
		return err
	}
	switch ev.Type {
	case "payment.completed":
		rc.orders.confirm(ev.Data.OrderID)
	case "payment.failed":
		rc.orders.set(ev.Data.OrderID, "declined")
	case "refund.created":
		rc.orders.set(ev.Data.OrderID, "refunded")
	}
	rc.processed.Add(1)
	return nil
}
