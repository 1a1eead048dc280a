package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

func ExampleHandler() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v, err := webhook.StandardWebhooks(secret)
	if err != nil {
		panic(err)
	}
	h := webhook.Handler(v, func(_ context.Context, e webhook.Event) error {
		var payload struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(e.Body, &payload); err != nil {
			return err
		}
		fmt.Println("processing", e.ID, payload.Type)
		return nil
	})

	// The sender delivers the same event twice.
	body := `{"type":"payment.completed","order":"42"}`
	for range 2 {
		now := time.Now()
		sig, _ := webhook.SignStandardWebhooks(secret, "msg_1", now, []byte(body))
		r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
		r.Header.Set("webhook-id", "msg_1")
		r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		r.Header.Set("webhook-signature", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// processing msg_1 payment.completed
	// 200
	// 200
}

func ExampleGitHub() {
	// The example from GitHub's documentation on validating deliveries.
	v, _ := webhook.GitHub("It's a Secret to Everybody")
	h := http.Header{}
	h.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	fmt.Println(v.Verify(h, []byte("Hello, World!")))
	fmt.Println(errors.Is(v.Verify(h, []byte("Hello, World?")), webhook.ErrInvalidSignature))
	// Output:
	// <nil>
	// true
}

func ExampleStripe() {
	now := time.Unix(1614265330, 0)
	v, _ := webhook.Stripe("whsec_test_secret", webhook.WithClock(func() time.Time { return now.Add(10 * time.Minute) }))
	body := []byte(`{"id":"evt_1","type":"payment_intent.succeeded"}`)
	h := http.Header{}
	h.Set("Stripe-Signature", webhook.SignStripe("whsec_test_secret", now, body))
	err := v.Verify(h, body)
	fmt.Println(errors.Is(err, webhook.ErrTimestampOutOfRange))
	// Output: true
}

// A handler of your own, for a queue say, gets the same answers to bad
// deliveries as Handler and the event's dedupe key.
func ExampleNewReceiver() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v, _ := webhook.StandardWebhooks(secret)
	rc := webhook.NewReceiver(v, webhook.WithMaxBodyBytes(64<<10))
	queued := map[string]bool{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, ok := rc.Receive(w, r)
		if !ok {
			return // 405, 413, 408, 400 or 401 written already
		}
		if !queued[e.Key()] {
			queued[e.Key()] = true
			fmt.Println("queued", e.ID)
		}
		w.WriteHeader(http.StatusAccepted)
	})

	body := `{"type":"payment.completed"}`
	for _, sig := range []string{"v1,AAAA", ""} {
		now := time.Now()
		if sig == "" {
			sig, _ = webhook.SignStandardWebhooks(secret, "msg_7", now, []byte(body))
		}
		r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
		r.Header.Set("webhook-id", "msg_7")
		r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		r.Header.Set("webhook-signature", sig)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	// Output:
	// 401
	// queued msg_7
	// 202
}

// Failures the sender cannot be told of go to the error handler: here a
// store whose Complete fails after the event was processed. The answer is
// 200 (the effect is applied; a 500 would have it applied twice).
func ExampleWithErrorHandler() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	v, _ := webhook.StandardWebhooks(secret)
	h := webhook.Handler(v, func(context.Context, webhook.Event) error { return nil },
		webhook.WithStore(brokenStore{webhook.NewMemoryStore(0)}),
		webhook.WithErrorHandler(func(_ context.Context, e webhook.Event, err error) {
			var se *webhook.StoreError
			if errors.As(err, &se) {
				fmt.Printf("%s: %s failed: %v\n", e.ID, se.Op, se.Err)
			}
		}))
	now := time.Now()
	sig, _ := webhook.SignStandardWebhooks(secret, "msg_8", now, []byte(`{}`))
	r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(`{}`))
	r.Header.Set("webhook-id", "msg_8")
	r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	r.Header.Set("webhook-signature", sig)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	fmt.Println(w.Code)
	// Output:
	// msg_8: Complete failed: database is read-only
	// 200
}

// brokenStore cannot record a completed event.
type brokenStore struct{ *webhook.MemoryStore }

func (brokenStore) Complete(context.Context, webhook.Claim, time.Duration) error {
	return errors.New("database is read-only")
}
