package soak_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

// chain delivers event id until a delivery is answered 200, pausing
// between deliveries as senders do. The first 200 of the event schedules
// its late redelivery, after the lease of any claim ran out.
func (h *hooks) chain(ctx context.Context, wg *sync.WaitGroup, id string, ev *event, late bool) {
	body := fmt.Appendf(nil, `{"id":%q,"stream":%q}`, id, streamNames[ev.stream])
	urls := h.urls[ev.stream]
	for attempt := 0; ; attempt++ {
		status, wait := h.deliver(ctx, ev.stream, urls[rand.N(len(urls))], id, body)
		h.mu.Lock()
		ev.status = status
		first := status == http.StatusOK && !ev.done
		if first {
			ev.done = true
			h.pendingN.Add(-1)
		}
		if status == http.StatusOK && late {
			ev.lateDone = true
		}
		h.mu.Unlock()
		switch status {
		case http.StatusOK:
			if late {
				h.lateDelivered.Add(1)
			}
			if first && !late {
				wg.Go(func() {
					if sleep(ctx, lateAfter) {
						h.mu.Lock()
						ev.late = true
						h.mu.Unlock()
						h.chain(ctx, wg, id, ev, true)
					}
				})
			}
			return
		case 0, http.StatusConflict, http.StatusInternalServerError, http.StatusServiceUnavailable:
		default:
			h.mu.Lock()
			h.unexpected = append(h.unexpected, fmt.Sprintf("%s: %d", id, status))
			h.mu.Unlock()
			return
		}
		// Senders back off, and wait at least as long as a 503 asks.
		d := 20 * time.Millisecond << min(attempt, 5)
		if !sleep(ctx, max(d/2+rand.N(d/2), wait)) {
			return
		}
	}
}

// deliver sends one signed delivery of event id to url, a receiver of
// stream, and returns the status, or 0 when no answer came, and the wait
// that a Retry-After asks for.
func (h *hooks) deliver(ctx context.Context, stream int, url, id string, body []byte) (int, time.Duration) {
	now := time.Now()
	sig, err := webhook.SignStandardWebhooks(secret, id, now, body)
	if err != nil {
		panic(err) // the secret is a constant
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set(webhook.HeaderWebhookID, id)
	req.Header.Set(webhook.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderWebhookSignature, sig)
	h.deliveries.Add(1)
	resp, err := h.client.Do(req)
	if err != nil {
		h.sendErrs.Add(1)
		return 0, 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	h.mu.Lock()
	h.statuses[stream][resp.StatusCode]++
	h.mu.Unlock()
	secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
	return resp.StatusCode, time.Duration(secs) * time.Second
}

// pending lists the events (at most maxListings) that no delivery, or no
// late redelivery, answered 200, with the latest answer.
func (h *hooks) pending() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var list []string
	for _, id := range slices.Sorted(maps.Keys(h.events)) {
		if ev := h.events[id]; (!ev.done || ev.late && !ev.lateDone) && len(list) < maxListings {
			list = append(list, fmt.Sprintf("%s (%s, late %v) last answered %d", id, streamNames[ev.stream], ev.late, ev.status))
		}
	}
	return strings.Join(list, "; ")
}

// sleep waits d, and reports false instead when ctx ends first.
func sleep(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
