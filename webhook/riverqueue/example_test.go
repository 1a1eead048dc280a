package riverqueue_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

// A receiver that acknowledges as soon as the event is queued, and a
// worker in the same process that processes it, with its writes and the
// job's completion in one transaction. (Not run: it needs PostgreSQL.)
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://postgres@127.0.0.1:5432/test")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()

	// River's tables, once per database (the river CLI does the same).
	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		log.Fatal(err)
	}

	workers := river.NewWorkers()
	river.AddWorker(workers, riverqueue.NewWorker(
		func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
			_, err := tx.Exec(ctx, "INSERT INTO payments (event_id, body) VALUES ($1, $2)", e.ID, e.Body)
			return err
		},
		riverqueue.WithAttempts(5),
		riverqueue.WithAttemptTimeout(30*time.Second),
	))
	client, err := river.NewClient(riverpgxv5.New(pool), &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 10}},
		Workers: workers,
		// Completed jobs are what dedupes redeliveries: keep them for the
		// senders' redelivery window.
		CompletedJobRetentionPeriod: webhook.DefaultKeep,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := client.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer client.Stop(ctx)

	v, err := webhook.StandardWebhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	http.Handle("/webhooks", riverqueue.Handler(client, v))
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// Inspecting the dead-letter queue and replaying what a fixed processor
// can now handle.
func ExampleReplay() {
	ctx := context.Background()
	var client *river.Client[pgx.Tx] // the application's client
	dead, err := riverqueue.DeadLetters(ctx, client, 100)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range dead {
		fmt.Printf("%s (%s) failed %d times: %s\n", d.EventID, d.Type, d.Attempts, d.LastError)
		if err := riverqueue.Replay(ctx, client, d.EventID); err != nil {
			log.Print(err)
		}
	}
}
