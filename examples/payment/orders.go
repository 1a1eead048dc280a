package main

import (
	"sort"
	"sync"
)

// order is one order of the shop.
type order struct {
	ID       string
	Amount   int
	Card     string
	State    string // "new", "paid", "pending", "declined", "failed", "confirmed", "refunded"
	ChargeID string
	Webhooks int // payment.completed events applied: must end at 1
}

// orders is the shop's order book, safe for concurrent use.
type orders struct {
	mu sync.Mutex
	m  map[string]*order
}

func newOrders(list ...order) *orders {
	o := &orders{m: map[string]*order{}}
	for i := range list {
		list[i].State = "new"
		o.m[list[i].ID] = &list[i]
	}
	return o
}

func (o *orders) get(id string) order {
	o.mu.Lock()
	defer o.mu.Unlock()
	return *o.m[id]
}

func (o *orders) set(id, state string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ord, ok := o.m[id]; ok {
		ord.State = state
	}
}

func (o *orders) paid(id, chargeID string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ord, ok := o.m[id]; ok {
		ord.State, ord.ChargeID = "paid", chargeID
	}
}

// confirm applies a payment.completed webhook.
func (o *orders) confirm(id string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ord, ok := o.m[id]; ok {
		ord.Webhooks++
		if ord.State == "paid" {
			ord.State = "confirmed"
		}
	}
}

// all returns the orders sorted by id.
func (o *orders) all() []order {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]order, 0, len(o.m))
	for _, ord := range o.m {
		out = append(out, *ord)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
