package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5"

	"github.com/resilient-go/resilient/webhook"
)

// brokenType is the event type the processor always fails on until it is
// fixed.
const brokenType = "refund.failed"

// flakyPercent of attempts fail at random (decided by the event id and the
// attempt number, so that a run is reproducible).
const flakyPercent = 25

// processor applies each event by counting it in the effects table,
// through the worker's transaction. Until fixed, it fails every brokenType
// event, and fails other attempts at random after writing its effect: the
// transaction then rolls the write back.
type processor struct {
	fixed atomic.Bool

	mu       sync.Mutex
	attempts map[string]int // per event id
}

func newProcessor() *processor { return &processor{attempts: map[string]int{}} }

// process is the worker's process function.
func (p *processor) process(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
	attempt := p.attempt(e.ID)
	typ := eventType(e.Body)
	if !p.fixed.Load() && typ == brokenType {
		return errors.New("refund.failed: ledger rejects a negative amount")
	}
	_, err := tx.Exec(ctx, `INSERT INTO effects (event_id, type, applied) VALUES ($1, $2, 1)
		ON CONFLICT (event_id) DO UPDATE SET applied = effects.applied + 1`, e.ID, typ)
	if err != nil {
		return err
	}
	if !p.fixed.Load() && flaky(e.ID, attempt) {
		return fmt.Errorf("ledger: 503 Service Unavailable (attempt %d)", attempt)
	}
	return nil
}

// attempt counts one more attempt of event id and returns its number.
func (p *processor) attempt(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.attempts[id]++
	return p.attempts[id]
}

// flaky reports whether attempt n of event id fails "at random": a hash
// of both, so that every run fails the same attempts.
func flaky(id string, n int) bool {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%d", id, n))
	return binary.BigEndian.Uint32(sum[:4])%100 < flakyPercent
}

// eventType is the "type" of a JSON event body.
func eventType(body []byte) string {
	var v struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(body, &v)
	return v.Type
}
