package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkHandlerDelivery: one new event through Handler (verify, claim,
// process with lease renewal armed, complete) with the in-memory store.
func BenchmarkHandlerDelivery(b *testing.B) {
	v, err := StandardWebhooks(testSecret)
	if err != nil {
		b.Fatal(err)
	}
	h := Handler(v, func(context.Context, Event) error { return nil })
	body := `{"type":"payment.completed","order":"42"}`
	now := time.Now()
	ts := strconv.FormatInt(now.Unix(), 10)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := "msg_" + strconv.Itoa(i)
		sig, _ := SignStandardWebhooks(testSecret, id, now, []byte(body))
		r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
		r.Header.Set("webhook-id", id)
		r.Header.Set("webhook-timestamp", ts)
		r.Header.Set("webhook-signature", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}
