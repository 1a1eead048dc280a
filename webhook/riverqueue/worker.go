package riverqueue

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/resilient-go/resilient/webhook"
)

// DefaultAttempts is how many times a worker tries an event before River
// discards its job into the dead-letter queue.
const DefaultAttempts = 5

// WorkerOption configures [NewWorker].
type WorkerOption interface {
	applyWorker(*worker)
}

type workerOptionFunc func(*worker)

func (f workerOptionFunc) applyWorker(w *worker) { f(w) }

// WithAttempts sets how many attempts an event gets before its job is
// discarded, that is dead-lettered (default [DefaultAttempts]; zero or
// negative means the default). Attempts are spaced by the client's
// RetryPolicy (River's default: attempt⁴ seconds, plus jitter).
//
// It also governs jobs inserted before the setting changed: the worker
// applies it to the job it is working, so River decides on it when the
// attempt fails. (River stores a max_attempts per job when the job is
// inserted; [EventArgs.InsertOpts] writes [DefaultAttempts] there, which is
// what River's UI shows and what its rescuer of stuck jobs uses.)
func WithAttempts(n int) WorkerOption {
	return workerOptionFunc(func(w *worker) {
		if n > 0 {
			w.attempts = n
		}
	})
}

// WithAttemptTimeout bounds each attempt: process, the job's completion and
// the commit run under a context that ends after d, and an attempt that
// runs out of time fails and is retried. Zero or negative means the
// client's JobTimeout (River's default: 1 minute).
func WithAttemptTimeout(d time.Duration) WorkerOption {
	return workerOptionFunc(func(w *worker) {
		if d > 0 {
			w.timeout = d
		}
	})
}

type worker struct {
	river.WorkerDefaults[EventArgs]
	process  func(ctx context.Context, tx pgx.Tx, e webhook.Event) error
	attempts int
	timeout  time.Duration
}

// NewWorker returns the River worker for [EventArgs]; register it on the
// client that works the queue:
//
//	workers := river.NewWorkers()
//	river.AddWorker(workers, riverqueue.NewWorker(process))
//
// Each attempt opens a transaction on the client's database, calls process
// with it, locks the job's row and checks that it still runs this attempt
// (see [ErrAttemptSuperseded]), and marks the job completed in that same
// transaction (river.JobCompleteTx) before committing. The event's effects written
// through tx and its completion commit together or not at all: when the
// worker dies, times out or fails to commit after process returned, nothing
// of the attempt remains and the next attempt processes the event again, on
// a database that shows no trace of the first. Effects outside tx (an HTTP
// call, an email) are at-least-once: make them idempotent by the event's
// ID. (The Event handed to process is rebuilt from [EventArgs]: its Key()
// is stable across attempts but is not the receiver's dedupe key, which
// webhook.Event cannot carry; EventArgs.Key is.)
//
// An error or panic in process fails the attempt: River records the error
// on the job and retries it with backoff; after the last attempt
// ([WithAttempts]) the job is discarded, and [DeadLetters] lists it. A nil
// process fails every attempt with [ErrNoProcess].
func NewWorker(process func(ctx context.Context, tx pgx.Tx, e webhook.Event) error, opts ...WorkerOption) river.Worker[EventArgs] {
	w := &worker{process: process, attempts: DefaultAttempts}
	for _, o := range opts {
		if o != nil {
			o.applyWorker(w)
		}
	}
	return w
}

// Timeout is River's per-attempt timeout for the job: [WithAttemptTimeout],
// or zero for the client's JobTimeout.
func (w *worker) Timeout(*river.Job[EventArgs]) time.Duration { return w.timeout }

// Work processes one attempt of one event.
func (w *worker) Work(ctx context.Context, job *river.Job[EventArgs]) error {
	// River decides between retrying and discarding a failed attempt on
	// this row's MaxAttempts after Work returns: setting it here makes the
	// worker's WithAttempts the limit, whatever the insert wrote. (It
	// relies on River deciding on the row it hands to Work, as v0.51 does;
	// TestWorkerDeadLetterAndReplay checks 2, 5 and 7 attempts.)
	job.MaxAttempts = w.attempts
	if w.process == nil {
		return ErrNoProcess
	}
	client, err := river.ClientFromContextSafely[pgx.Tx](ctx)
	if err != nil {
		return fmt.Errorf("webhook: %w", err)
	}
	tx, err := beginTx(ctx, client)
	if err != nil {
		return err
	}
	// After a commit this is a no-op; after a failure it undoes everything
	// the attempt did, process's writes and the completion alike.
	defer func() { _ = tx.Rollback(ctx) }()
	if err := w.process(ctx, tx, job.Args.Event()); err != nil {
		return err
	}
	if err := holdAttempt(ctx, tx, client.Schema(), job); err != nil {
		return err
	}
	if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil {
		return fmt.Errorf("webhook: complete job %d: %w", job.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("webhook: commit job %d: %w", job.ID, err)
	}
	return nil
}
