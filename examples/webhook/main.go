// Command webhook runs a receiver for payment events and a companion sender
// in one program: the sender signs events with the Standard Webhooks scheme
// and delivers some of them twice, one forged, one stale and one while the
// receiver's database is down; the receiver verifies each delivery and
// processes every event exactly once. The receiver is an http.Server with
// the timeouts a webhook receiver should set; it uses the in-memory dedupe
// store, which suits one process (replicas need webhook/pgstore or
// webhook/redisstore).
//
//	go run ./examples/webhook
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
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
	mux.Handle("POST /webhooks/payments", webhook.Handler(v, rec.process,
		// Store failures after the answer was decided (a Complete that
		// failed, an in-memory store too small for its window) have no
		// other way out: log them.
		webhook.WithErrorHandler(func(_ context.Context, e webhook.Event, err error) {
			fmt.Fprintf(out, "    receiver: %s: %v\n", e.ID, err)
		})))
	url, stop, err := serve(mux)
	if err != nil {
		return 0, err
	}
	defer stop()

	snd := &sender{url: url + "/webhooks/payments", secret: secret, out: out,
		client: resilient.New(resilient.WithAttemptTimeout(2 * time.Second))}
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

// serve runs h on a loopback port with the timeouts a webhook receiver
// should set: headers within 5 s, the whole request within 15 s (the
// handler bounds the body itself, 10 s by default), the answer within 30 s,
// idle connections closed after 60 s, headers up to 64 KiB.
func serve(h http.Handler) (url string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := webhook.NewServer(h)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, err)
		}
	}, nil
}
