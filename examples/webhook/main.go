// Command webhook runs a receiver for payment events and a companion sender
// in one program: the sender signs events with the Standard Webhooks scheme
// and delivers some of them twice, one forged, one stale and one while the
// receiver's database is down; the receiver verifies each delivery and
// processes every event exactly once.
//
//	go run ./examples/webhook
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/webhook"
)

// secret is shared by sender and receiver; a real one comes from the
// provider's dashboard and is kept out of the code.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func main() {
	if _, err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run delivers the events and returns how many were processed.
func run(out io.Writer) (processed int, err error) {
	rec := &receiver{orders: map[string]string{}, out: out, failOnce: map[string]bool{"evt_3": true}}
	v, err := webhook.StandardWebhooks(secret)
	if err != nil {
		return 0, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/payments", webhook.Handler(v, rec.process))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	snd := &sender{url: srv.URL + "/webhooks/payments", secret: secret, out: out,
		client: resilient.New(resilient.WithTimeout(2 * time.Second))}
	defer snd.client.CloseIdleConnections()

	deliveries := []delivery{
		{id: "evt_1", body: `{"type":"payment.completed","order_id":"42","amount":4200}`, note: "payment.completed"},
		{id: "evt_1", body: `{"type":"payment.completed","order_id":"42","amount":4200}`, note: "payment.completed, redelivered"},
		{id: "evt_2", body: `{"type":"payment.failed","order_id":"43","amount":990}`, note: "payment.failed"},
		{id: "evt_9", body: `{"type":"payment.completed","order_id":"44","amount":4200}`, note: "forged: body changed after signing", tamper: true},
		{id: "evt_8", body: `{"type":"payment.completed","order_id":"45","amount":4200}`, note: "replayed from an hour ago", at: time.Now().Add(-time.Hour)},
		{id: "evt_3", body: `{"type":"refund.created","order_id":"42","amount":1200}`, note: "refund.created (database down)"},
		{id: "evt_3", body: `{"type":"refund.created","order_id":"42","amount":1200}`, note: "refund.created, redelivered"},
		{id: "evt_3", body: `{"type":"refund.created","order_id":"42","amount":1200}`, note: "refund.created, redelivered again"},
	}
	fmt.Fprintln(out, "deliveries:")
	for _, d := range deliveries {
		snd.deliver(d)
	}
	fmt.Fprintf(out, "\n%d deliveries sent, %d events processed, each once\n", len(deliveries), rec.processed)
	fmt.Fprintln(out, "orders:")
	for _, id := range []string{"42", "43", "44", "45"} {
		state := rec.orders[id]
		if state == "" {
			state = "(untouched)"
		}
		fmt.Fprintf(out, "  %s: %s\n", id, state)
	}
	return rec.processed, nil
}
