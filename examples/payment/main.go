// Command payment is the complete example: a payment-gateway integration
// built on resilient, runnable with no network.
//
//	go run ./examples/payment
//
// A fake gateway runs in the program and misbehaves on purpose (throttling
// with Retry-After, a late answer, a declined card, an outage). A batch of
// orders is charged concurrently through a typed client with idempotency
// keys, timeouts, retries, a breaker and a fallback to "pending"; pending
// orders are charged once the gateway is back; the gateway's webhooks, some
// delivered twice, are verified and applied exactly once.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilient-go/resilient"
)

const (
	demoToken     = "sk_test_demo_token"
	webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	declinedCard  = "4000000000000002"
	goodCard      = "4242424242424242"
)

func main() {
	if _, err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// summary is what the run ends with; the example's test checks it.
type summary struct {
	Orders, Succeeded, Pending, Failed int
	Attempts                           int
	Charges                            int // charges the gateway actually made
	WebhooksReceived, WebhooksApplied  int
	Book                               []order
}

// result is one settled payment: the Go counterpart of Promise.allSettled.
type result struct {
	OrderID string
	Charge  Charge
	Err     error
}

func run(ctx context.Context, out io.Writer) (summary, error) {
	gw := newFakeGateway(demoToken, webhookSecret)
	defer gw.Close()

	book := newOrders(
		order{ID: "order-1", Amount: 4200, Card: goodCard},
		order{ID: "order-2", Amount: 1999, Card: goodCard},
		order{ID: "order-3", Amount: 1500, Card: goodCard}, // throttled once
		order{ID: "order-4", Amount: 7300, Card: goodCard}, // late answer
		order{ID: "order-5", Amount: 990, Card: declinedCard},
		order{ID: "order-6", Amount: 2500, Card: goodCard}, // during the outage
		order{ID: "order-7", Amount: 3100, Card: goodCard},
		order{ID: "order-8", Amount: 800, Card: goodCard},
	)
	rc := &receiver{orders: book}
	hook, err := rc.handler(webhookSecret)
	if err != nil {
		return summary{}, err
	}
	shop := httptest.NewServer(hook)
	defer shop.Close()

	var attempts atomic.Int32
	countAttempts := func(_ context.Context, e resilient.Event) {
		if e.Kind == resilient.EventAttempt {
			attempts.Add(1)
		}
	}
	// Warnings and errors go to the output, with no time, so the retries,
	// the breaker and the outage can be seen; the bearer token never is.
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == "duration" {
				return slog.Attr{}
			}
			return a
		}}))
	pay := NewPaymentGateway(gw.URL, demoToken, logger, countAttempts)
	defer pay.http.CloseIdleConnections()

	fmt.Fprintln(out, "== wave 1: five orders at once")
	report(out, book, settle(ctx, pay, book, "order-1", "order-2", "order-3", "order-4", "order-5"))

	fmt.Fprintln(out, "\n== the gateway goes down; wave 2: three orders at once")
	gw.down.Store(true)
	report(out, book, settle(ctx, pay, book, "order-6", "order-7", "order-8"))

	fmt.Fprintln(out, "\n== the gateway is back; pending orders are charged with the same idempotency keys")
	gw.down.Store(false)
	time.Sleep(1100 * time.Millisecond) // the breaker's OpenTimeout
	var pending []string
	for _, o := range book.all() {
		if o.State == "pending" {
			pending = append(pending, o.ID)
		}
	}
	for _, id := range pending { // one at a time: the half-open breaker lets one probe through
		report(out, book, settle(ctx, pay, book, id))
	}

	fmt.Fprintln(out, "\n== order-1 is refunded")
	o1 := book.get("order-1")
	if err := pay.Refund(ctx, "order-1", o1.ChargeID, o1.Amount); err != nil {
		return summary{}, err
	}

	fmt.Fprintln(out, "\n== the gateway sends its webhooks, some twice")
	whClient := resilient.New(resilient.WithAttemptTimeout(2*time.Second), resilient.WithRetry(resilient.RetryPolicy{}))
	defer whClient.CloseIdleConnections()
	if _, err := gw.sendWebhooks(whClient, shop.URL); err != nil {
		return summary{}, err
	}

	s := summary{Book: book.all(), Attempts: int(attempts.Load()), Charges: gw.chargesMade(),
		WebhooksReceived: int(rc.received.Load()), WebhooksApplied: int(rc.processed.Load())}
	s.Orders = len(s.Book)
	for _, o := range s.Book {
		switch o.State {
		case "confirmed", "refunded":
			s.Succeeded++
		case "pending":
			s.Pending++
		default:
			s.Failed++
		}
	}
	printSummary(out, s)
	return s, nil
}

// settle charges the orders concurrently and collects every result, the
// failures included.
func settle(ctx context.Context, pay *PaymentGateway, book *orders, ids ...string) []result {
	results := make([]result, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			o := book.get(id)
			c, err := pay.ProcessPayment(ctx, id, o.Amount, o.Card)
			results[i] = result{OrderID: id, Charge: c, Err: err}
			switch {
			case err == ErrDeclined:
				book.set(id, "declined")
			case err != nil:
				book.set(id, "failed")
			case c.Status == "pending":
				book.set(id, "pending")
			default:
				book.paid(id, c.ID)
			}
		})
	}
	wg.Wait()
	return results
}

func report(out io.Writer, book *orders, results []result) {
	for _, r := range results {
		switch {
		case r.Err != nil:
			fmt.Fprintf(out, "  %s: %v\n", r.OrderID, r.Err)
		default:
			fmt.Fprintf(out, "  %s: %s %s\n", r.OrderID, r.Charge.Status, r.Charge.ID)
		}
	}
}

func printSummary(out io.Writer, s summary) {
	fmt.Fprintln(out, "\n== summary")
	fmt.Fprintln(out, "| order | amount | state | charge | payment webhooks applied |")
	fmt.Fprintln(out, "| --- | ---: | --- | --- | ---: |")
	for _, o := range s.Book {
		fmt.Fprintf(out, "| %s | %d | %s | %s | %d |\n", o.ID, o.Amount, o.State, o.ChargeID, o.Webhooks)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| orders | succeeded | pending | failed | attempts made | charges made by the gateway | webhooks received | webhooks processed |")
	fmt.Fprintln(out, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	fmt.Fprintf(out, "| %d | %d | %d | %d | %d | %d | %d | %d |\n", s.Orders, s.Succeeded, s.Pending, s.Failed,
		s.Attempts, s.Charges, s.WebhooksReceived, s.WebhooksApplied)
	if s.Charges == s.Succeeded {
		fmt.Fprintln(out, "\nno order was charged twice: charges made = orders that succeeded")
	} else {
		fmt.Fprintf(out, "\nMISMATCH: %d charges for %d successful orders\n", s.Charges, s.Succeeded)
	}
}
