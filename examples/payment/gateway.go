package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

// fakeGateway behaves like a real payment gateway, misbehaving on purpose:
// it requires a bearer token, honours Idempotency-Key (the same key returns
// the first result and never charges twice; the same key with another body
// is a 422), throttles one order with 503 + Retry-After, answers another
// slowly, declines a card, goes down for a while, and afterwards sends
// signed webhooks back, some of them twice.
type fakeGateway struct {
	*httptest.Server
	token, webhookSecret string

	mu      sync.Mutex
	seen    map[string]stored // idempotency key → first result
	charges int               // charges actually made
	hits    map[string]int    // requests per order, to misbehave once
	events  []outbound        // webhooks to send

	down atomic.Bool // the outage: connections are dropped
}

type stored struct {
	bodyHash [32]byte
	status   int
	body     []byte
}

type outbound struct {
	id, typ string
	payload map[string]any
}

// chargeRequest is what ProcessPayment sends.
type chargeRequest struct {
	OrderID string `json:"order_id"`
	Amount  int    `json:"amount"`
	Card    string `json:"card"`
}

func newFakeGateway(token, webhookSecret string) *fakeGateway {
	g := newGateway(token, webhookSecret)
	g.Server = httptest.NewServer(g.handler())
	return g
}

// newGateway returns the gateway without its server; tests serve its
// handler in memory.
func newGateway(token, webhookSecret string) *fakeGateway {
	return &fakeGateway{token: token, webhookSecret: webhookSecret, seen: map[string]stored{}, hits: map[string]int{}}
}

// handler is the gateway's API.
func (g *fakeGateway) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/charges", g.charge)
	mux.HandleFunc("POST /v1/refunds", g.refund)
	return g.guard(mux)
}

// guard drops connections during the outage and checks the token.
func (g *fakeGateway) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.down.Load() {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+g.token {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// idempotent runs do once per Idempotency-Key and replays its result.
func (g *fakeGateway) idempotent(w http.ResponseWriter, r *http.Request, body []byte, do func() (int, []byte)) {
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		http.Error(w, `{"error":"Idempotency-Key required"}`, http.StatusBadRequest)
		return
	}
	hash := sha256.Sum256(body)
	g.mu.Lock()
	if s, ok := g.seen[key]; ok {
		g.mu.Unlock()
		if s.bodyHash != hash {
			http.Error(w, `{"error":"Idempotency-Key reused with another body"}`, http.StatusUnprocessableEntity)
			return
		}
		w.Header().Set("Idempotent-Replayed", "true")
		w.WriteHeader(s.status)
		_, _ = w.Write(s.body)
		return
	}
	status, out := do()
	g.seen[key] = stored{bodyHash: hash, status: status, body: out}
	g.mu.Unlock()
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

func (g *fakeGateway) charge(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req chargeRequest
	if json.Unmarshal(body, &req) != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	g.mu.Lock()
	g.hits[req.OrderID]++
	hit := g.hits[req.OrderID]
	g.mu.Unlock()
	switch {
	case req.OrderID == "order-3" && hit == 1: // throttled once
		w.Header().Set("Retry-After", "1")
		http.Error(w, `{"error":"slow down"}`, http.StatusServiceUnavailable)
		return
	case req.OrderID == "order-4" && hit == 1: // charged, but the answer is late
		defer func() {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}()
	}
	g.idempotent(w, r, body, func() (int, []byte) {
		if req.Card == "4000000000000002" {
			g.events = append(g.events, outbound{"evt_" + req.OrderID + "_failed", "payment.failed",
				map[string]any{"order_id": req.OrderID, "reason": "card_declined"}})
			return http.StatusPaymentRequired, []byte(`{"error":"card_declined"}`)
		}
		g.charges++
		id := "ch_" + strconv.Itoa(g.charges)
		g.events = append(g.events, outbound{"evt_" + id, "payment.completed",
			map[string]any{"order_id": req.OrderID, "charge_id": id, "amount": req.Amount}})
		out, _ := json.Marshal(map[string]any{"id": id, "status": "succeeded", "amount": req.Amount})
		return http.StatusCreated, out
	})
}

func (g *fakeGateway) refund(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		ChargeID string `json:"charge_id"`
		OrderID  string `json:"order_id"`
		Amount   int    `json:"amount"`
	}
	if json.Unmarshal(body, &req) != nil {
		http.Error(w, `{"error":"bad json"}`, http.StatusBadRequest)
		return
	}
	g.idempotent(w, r, body, func() (int, []byte) {
		id := "re_" + req.ChargeID
		g.events = append(g.events, outbound{"evt_" + id, "refund.created",
			map[string]any{"order_id": req.OrderID, "refund_id": id, "amount": req.Amount}})
		out, _ := json.Marshal(map[string]any{"id": id, "status": "succeeded"})
		return http.StatusCreated, out
	})
}

// chargesMade returns how many charges the gateway actually made.
func (g *fakeGateway) chargesMade() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.charges
}

// sendWebhooks delivers every event to url, signed with the Standard
// Webhooks scheme; every other event is delivered twice, as real gateways
// do when an acknowledgement is lost. It returns the deliveries made.
func (g *fakeGateway) sendWebhooks(c *http.Client, url string) (int, error) {
	g.mu.Lock()
	events := append([]outbound(nil), g.events...)
	g.mu.Unlock()
	deliveries := 0
	for i, e := range events {
		body, _ := json.Marshal(map[string]any{"type": e.typ, "data": e.payload})
		for range 1 + i%2 {
			now := time.Now()
			sig, err := webhook.SignStandardWebhooks(g.webhookSecret, e.id, now, body)
			if err != nil {
				return deliveries, err
			}
			req, _ := http.NewRequest(http.MethodPost, url, bytesReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("webhook-id", e.id)
			req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			req.Header.Set("webhook-signature", sig)
			resp, err := c.Do(req)
			if err != nil {
				return deliveries, err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return deliveries, fmt.Errorf("webhook %s: %s", e.id, resp.Status)
			}
			deliveries++
		}
	}
	return deliveries, nil
}
