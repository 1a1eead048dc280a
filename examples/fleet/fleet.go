package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

// secret is shared by the sender and the receivers.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// The fleet.
const (
	receivers     = 3
	workerClients = 2 // River clients that work the queue, as separate processes would
	workersEach   = 4
	attempts      = 3
	retryDelay    = 20 * time.Millisecond // River's default is attempt⁴ seconds
)

// summary is what a run counted.
type summary struct {
	Sent, Acked    int // deliveries
	Jobs           int // jobs queued, one per event
	Processed      int // events processed (each once) before the replay
	DeadLettered   int // events in the dead-letter queue before the replay
	FinalProcessed int // events processed after the replay
	AppliedTwice   int // events whose effect was applied more than once
	FinalDead      int // dead letters after the replay
}

// runOn runs the fleet on the PostgreSQL at dsn and prints what happens.
func runOn(ctx context.Context, out io.Writer, dsn string) (summary, error) {
	var sum summary
	out = &syncWriter{w: out}
	db, err := openDatabase(ctx, dsn)
	if err != nil {
		fmt.Fprintf(out, "fleet needs PostgreSQL (%v); %s\n", err, startHint)
		return sum, nil
	}
	defer db.close()

	proc := newProcessor()
	workers := make([]*river.Client[pgx.Tx], workerClients)
	for i := range workers {
		if workers[i], err = startWorkers(ctx, db, proc); err != nil {
			return sum, err
		}
		defer stopClient(workers[i])
	}
	var urls []string
	for range receivers {
		url, stop, err := startReceiver(ctx, db, out)
		if err != nil {
			return sum, err
		}
		defer stop()
		urls = append(urls, url)
	}
	fmt.Fprintf(out, "fleet: %d receivers and %d River clients (%d workers each) on one PostgreSQL, schema %s\n",
		receivers, workerClients, workersEach, db.schema)

	ds := workload()
	fmt.Fprintf(out, "sender: %d deliveries of %d events (each 1 to %d times, shuffled across the receivers), %d at a time\n",
		len(ds), events, maxCopies, senders)
	if sum.Sent, sum.Acked, err = sendAll(ctx, urls, ds); err != nil {
		return sum, err
	}
	st, err := jobStates(ctx, db)
	if err != nil {
		return sum, err
	}
	sum.Jobs = st.total
	fmt.Fprintf(out, "  deliveries sent %d, acknowledged %d; jobs queued %d, one per event (%d redeliveries queued nothing)\n",
		sum.Sent, sum.Acked, sum.Jobs, sum.Acked-sum.Jobs)

	fmt.Fprintf(out, "workers: %d %% of attempts fail at random (after writing: rolled back), %q always fails; %d attempts, %v apart\n",
		flakyPercent, brokenType, attempts, retryDelay)
	if st, err = waitFinal(ctx, db, workers[0], func(s states) bool { return s.completed+s.discarded == s.total }); err != nil {
		return sum, err
	}
	if sum.Processed, sum.AppliedTwice, err = effects(ctx, db); err != nil {
		return sum, err
	}
	fmt.Fprintf(out, "  events processed %d, applied more than once %d\n", sum.Processed, sum.AppliedTwice)
	if err := printDeadLetters(ctx, out, workers[0], &sum); err != nil {
		return sum, err
	}

	proc.fixed.Store(true)
	fmt.Fprintf(out, "fixing the processor and replaying the %d dead letters\n", sum.DeadLettered)
	dead, err := riverqueue.DeadLetters(ctx, workers[0], riverqueue.MaxDeadLetterLimit)
	if err != nil {
		return sum, err
	}
	for _, d := range dead {
		if err := riverqueue.Replay(ctx, workers[0], d.EventID); err != nil {
			return sum, err
		}
	}
	if st, err = waitFinal(ctx, db, workers[0], func(s states) bool { return s.completed+s.discarded == s.total }); err != nil {
		return sum, err
	}
	sum.FinalDead = st.discarded
	if sum.FinalProcessed, sum.AppliedTwice, err = effects(ctx, db); err != nil {
		return sum, err
	}
	return sum, printTable(ctx, out, db)
}

// clientConfig is the River configuration shared by the fleet's clients.
func clientConfig(db *database) *river.Config {
	return &river.Config{
		Schema: db.schema,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})),
		// Completed jobs dedupe redeliveries: keep them for the senders'
		// redelivery window.
		CompletedJobRetentionPeriod: webhook.DefaultKeep,
		FetchCooldown:               10 * time.Millisecond,
		FetchPollInterval:           50 * time.Millisecond,
		RetryPolicy:                 constantRetry{},
	}
}

// constantRetry retries a failed attempt after retryDelay, to keep the demo
// short.
type constantRetry struct{}

func (constantRetry) NextRetry(*rivertype.JobRow) time.Time { return time.Now().Add(retryDelay) }

// startWorkers starts a River client that works the queue with proc, on a
// pool of its own.
func startWorkers(ctx context.Context, db *database, proc *processor) (*river.Client[pgx.Tx], error) {
	pool, err := db.pool(ctx, workersEach+2)
	if err != nil {
		return nil, err
	}
	ws := river.NewWorkers()
	river.AddWorker(ws, riverqueue.NewWorker(proc.process,
		riverqueue.WithAttempts(attempts), riverqueue.WithAttemptTimeout(10*time.Second)))
	cfg := clientConfig(db)
	cfg.Workers = ws
	cfg.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: workersEach}}
	client, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return nil, err
	}
	return client, client.Start(ctx)
}

// stopClient stops a worker client, letting running jobs finish.
func stopClient(c *river.Client[pgx.Tx]) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "fleet: stop workers:", err)
	}
}

// startReceiver serves riverqueue.Handler with an insert-only River client
// on a pool of its own, as one replica of the receiver.
func startReceiver(ctx context.Context, db *database, out io.Writer) (url string, stop func(), err error) {
	pool, err := db.pool(ctx, 4)
	if err != nil {
		return "", nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(pool), clientConfig(db))
	if err != nil {
		return "", nil, err
	}
	v, err := webhook.StandardWebhooks(secret)
	if err != nil {
		return "", nil, err
	}
	h := riverqueue.Handler(client, v, webhook.WithErrorHandler(func(_ context.Context, e webhook.Event, err error) {
		fmt.Fprintf(out, "  receiver: %s not queued: %v\n", e.ID, err)
	}))
	return serve(h)
}
