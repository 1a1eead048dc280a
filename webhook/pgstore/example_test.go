package pgstore_test

import (
	"context"
	"encoding/json"
	"log"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/pgstore"
)

// Transactional exactly-once: the order is marked paid in the same
// transaction that records the event, so it happens once, whichever
// replica receives which delivery.
func ExampleStore_Handler() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool, pgstore.WithPruneInterval(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	v, err := webhook.StandardWebhooks(os.Getenv("WEBHOOK_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("POST /webhooks", store.Handler(v, func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
		var payload struct {
			Order string `json:"order"`
		}
		if err := json.Unmarshal(e.Body, &payload); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "UPDATE orders SET paid = true WHERE id = $1", payload.Order)
		return err // non-nil: rolled back, 500, the sender redelivers
	}))
}

// Lease-based: the effect is outside the database (an email), so the store
// only dedupes: shared by the replicas, renewed while process runs.
func ExampleNew() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := pgstore.New(ctx, pool, pgstore.WithTable("webhooks.email_events"))
	if err != nil {
		log.Fatal(err)
	}
	v, err := webhook.GitHub(os.Getenv("WEBHOOK_SECRET"))
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("POST /github", webhook.Handler(v, func(ctx context.Context, e webhook.Event) error {
		return sendEmail(ctx, e.Body)
	}, webhook.WithStore(store), webhook.WithLease(time.Minute)))
	// Prune from one place, for example a daily job.
	if _, err := store.Prune(ctx); err != nil {
		log.Print(err)
	}
}

func sendEmail(context.Context, []byte) error { return nil }
