package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// receive runs a delivery through a Receiver and returns its event.
func receive(t *testing.T, v Verifier, r *http.Request, opts ...HandlerOption) Event {
	t.Helper()
	w := httptest.NewRecorder()
	e, ok := NewReceiver(v, opts...).Receive(w, r)
	require.True(t, ok, "status %d", w.Code)
	return e
}

func githubDelivery(id, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set(HeaderGitHubSignature, SignGitHub(ghSecret, []byte(body)))
	r.Header.Set(HeaderGitHubDelivery, id)
	return r
}

func stripeDelivery(now time.Time, body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
	r.Header.Set(HeaderStripeSignature, SignStripe(stSecret, now, []byte(body)))
	return r
}

// TestEventKeyCoversOnlyWhatIsSigned: keys are 64 hex characters, equal
// for redeliveries, and derived from signed content only.
func TestEventKeyCoversOnlyWhatIsSigned(t *testing.T) {
	now := time.Now()
	sw := mustSW(t, testSecret)
	gh := mustGH(t, ghSecret)
	st := mustStripe(t, stSecret)
	custom := WithEventID(func(h http.Header, _ []byte) string { return h.Get("X-Id") })
	withID := func(r *http.Request, id string) *http.Request { r.Header.Set("X-Id", id); return r }

	tests := []struct {
		name     string
		a, b     Event
		sameKeys bool
	}{
		{"standard: same id, another body (signed id)",
			receive(t, sw, delivery(t, "msg_1", `{"n":1}`)), receive(t, sw, delivery(t, "msg_1", `{"n":2}`)), true},
		{"standard: another id, same body",
			receive(t, sw, delivery(t, "msg_1", `{}`)), receive(t, sw, delivery(t, "msg_2", `{}`)), false},
		{"github: same body, invented delivery id (unsigned)",
			receive(t, gh, githubDelivery("72d3162e-1", `{"zen":"x"}`)), receive(t, gh, githubDelivery("forged", `{"zen":"x"}`)), true},
		{"github: another body, same delivery id",
			receive(t, gh, githubDelivery("72d3162e-1", `{"zen":"x"}`)), receive(t, gh, githubDelivery("72d3162e-1", `{"zen":"y"}`)), false},
		{"stripe: same id in the body, body changed (pending_webhooks)",
			receive(t, st, stripeDelivery(now, `{"id":"evt_1","pending_webhooks":2}`)), receive(t, st, stripeDelivery(now, `{"id":"evt_1","pending_webhooks":1}`)), true},
		{"stripe: no id: the body",
			receive(t, st, stripeDelivery(now, `[1]`)), receive(t, st, stripeDelivery(now.Add(time.Second), `[1]`)), true},
		{"WithEventID: same id, another body",
			receive(t, sw, withID(delivery(t, "m", `{"n":1}`), "x"), custom), receive(t, sw, withID(delivery(t, "m", `{"n":2}`), "x"), custom), false},
		{"WithEventID: same id, same body",
			receive(t, sw, withID(delivery(t, "m", `{}`), "x"), custom), receive(t, sw, withID(delivery(t, "n", `{}`), "x"), custom), true},
		{"an id never has the key of a body",
			Event{ID: "", Body: []byte("a")}, Event{ID: "a"}, false},
	}
	for _, tt := range tests {
		for _, e := range []Event{tt.a, tt.b} {
			assert.Len(t, e.Key(), 64, tt.name)
			assert.Equal(t, strings.ToLower(e.Key()), e.Key(), tt.name)
		}
		if tt.sameKeys {
			assert.Equal(t, tt.a.Key(), tt.b.Key(), tt.name)
		} else {
			assert.NotEqual(t, tt.a.Key(), tt.b.Key(), tt.name)
		}
	}
	big := receive(t, gh, githubDelivery(strings.Repeat("i", 512<<10), `{}`))
	assert.Len(t, big.Key(), 64, "a 512 KiB id costs the store 64 bytes")
}

// TestHandlerGitHubReplayWithInventedIDsProcessedOnce: one validly signed
// body replayed 200 times, each under a new 64 KiB X-GitHub-Delivery, is
// processed once, and the store holds one key.
func TestHandlerGitHubReplayWithInventedIDsProcessedOnce(t *testing.T) {
	var calls atomic.Int32
	store := NewMemoryStore(0)
	h := Handler(mustGH(t, ghSecret), func(context.Context, Event) error { calls.Add(1); return nil }, WithStore(store))
	body := `{"action":"opened","number":1}`
	pad := strings.Repeat("f", 64<<10)
	for i := range 200 {
		w := serve(h, githubDelivery(pad+strconv.Itoa(i), body))
		require.Equal(t, http.StatusOK, w.Code)
	}
	assert.Equal(t, int32(1), calls.Load())
	assert.Equal(t, 1, store.Len())
}
