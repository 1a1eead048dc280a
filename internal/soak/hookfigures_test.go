package soak_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// webhookFigures are the figures of the webhook part.
type webhookFigures struct {
	receivers                    []string
	streams                      [streams]streamFigures
	events, deliveries, sendErrs int
	late, lateAgain, again       int // late redeliveries answered 200; process calls after a 200
	calls, failed, txFailed      int // process calls, failed on purpose, tx inserts failed
	effects, duplicated, lost    int
	killedPG, killedRedis        int
	drain                        time.Duration     // from the end of the run to the last 200
	held                         int               // ticks without a new event: maxPending were pending
	storeErrs                    map[string]int    // reported by the handlers, by operation
	errSamples                   map[string]string // one error text per operation
	listing                      []string          // events duplicated or lost, at most maxListings
}

// streamFigures are the figures of one stream of events.
type streamFigures struct {
	events, effects, duplicated, lost int
	failed                            int         // process calls failed on purpose
	statuses                          map[int]int // answers to deliveries
}

// figures counts the effects of every event, reading those of the
// transactional stream from its table.
func (h *hooks) figures(t *testing.T) *webhookFigures {
	applied := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := h.admin.Query(ctx, "SELECT event, count(*) FROM "+pgx.Identifier{h.fx}.Sanitize()+" GROUP BY event")
	if err != nil {
		t.Fatal(err)
	}
	var id string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error { applied[id] = n; return nil }); err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.effects {
		applied[id] += n
	}
	f := &webhookFigures{receivers: h.receivers, events: len(h.events),
		deliveries: int(h.deliveries.Load()), sendErrs: int(h.sendErrs.Load()),
		late: int(h.lateDelivered.Load()), lateAgain: h.lateAgain, again: h.again,
		calls: int(h.calls.Load()), txFailed: int(h.txFailed.Load()),
		killedPG: int(h.killedPG.Load()), killedRedis: int(h.killedRedis.Load()), held: int(h.held.Load()),
		storeErrs: h.storeErrs, errSamples: h.errSamples}
	for s := range f.streams {
		f.streams[s].statuses = h.statuses[s]
		f.streams[s].failed = h.failed[s]
		f.failed += h.failed[s]
	}
	for _, id := range slices.Sorted(maps.Keys(h.events)) {
		ev, n := h.events[id], applied[id]
		sf := &f.streams[ev.stream]
		sf.events++
		sf.effects += n
		f.effects += n
		switch {
		case n == 1:
			continue
		case n == 0:
			sf.lost++
			f.lost++
		default:
			sf.duplicated++
			f.duplicated++
		}
		if len(f.listing) < maxListings {
			f.listing = append(f.listing, fmt.Sprintf("%s (%s) applied %d times, reported: %s",
				id, streamNames[ev.stream], n, strings.Join(ev.reported, " | ")))
		}
	}
	return f
}
