package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/resilient-go/resilient/webhook"
)

// payload is the body of the payment events this receiver understands.
type payload struct {
	Type    string `json:"type"`
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
}

// receiver keeps the state of orders and dispatches events by type.
type receiver struct {
	mu        sync.Mutex
	orders    map[string]string // order id → state
	processed int
	out       io.Writer
	// failOnce makes the first processing of an event fail, as a database
	// outage would, to show that a redelivery processes it.
	failOnce map[string]bool
}

var errTemporary = errors.New("database unavailable")

func (r *receiver) process(_ context.Context, e webhook.Event) error {
	var p payload
	if err := json.Unmarshal(e.Body, &p); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failOnce[e.ID] {
		delete(r.failOnce, e.ID)
		fmt.Fprintf(r.out, "    receiver: %s %s failed (%v)\n", e.ID, p.Type, errTemporary)
		return errTemporary
	}
	switch p.Type {
	case "payment.completed":
		r.orders[p.OrderID] = "paid"
	case "payment.failed":
		r.orders[p.OrderID] = "payment failed"
	case "refund.created":
		r.orders[p.OrderID] = fmt.Sprintf("refunded %d", p.Amount)
	default:
		fmt.Fprintf(r.out, "    receiver: %s: unknown type %q ignored\n", e.ID, p.Type)
		return nil
	}
	r.processed++
	fmt.Fprintf(r.out, "    receiver: %s %s → order %s is %s\n", e.ID, p.Type, p.OrderID, r.orders[p.OrderID])
	return nil
}
