package riverqueue_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

func TestWorkerTimeoutOption(t *testing.T) {
	process := func(context.Context, pgx.Tx, webhook.Event) error { return nil }
	tests := []struct {
		opts []riverqueue.WorkerOption
		want time.Duration
	}{
		{nil, 0},
		{[]riverqueue.WorkerOption{riverqueue.WithAttemptTimeout(3 * time.Second)}, 3 * time.Second},
		{[]riverqueue.WorkerOption{riverqueue.WithAttemptTimeout(-time.Second)}, 0},
		{[]riverqueue.WorkerOption{nil, riverqueue.WithAttempts(-1)}, 0},
	}
	for _, tt := range tests {
		if got := riverqueue.NewWorker(process, tt.opts...).Timeout(nil); got != tt.want {
			t.Errorf("Timeout = %v, want %v", got, tt.want)
		}
	}
}

// Outside a River client, or without a process, an attempt fails with a
// clear error and nothing runs.
func TestWorkerMisconfigured(t *testing.T) {
	job := func() *river.Job[riverqueue.EventArgs] {
		return &river.Job[riverqueue.EventArgs]{JobRow: &rivertype.JobRow{ID: 1, State: rivertype.JobStateRunning}}
	}
	if err := riverqueue.NewWorker(nil).Work(context.Background(), job()); !errors.Is(err, riverqueue.ErrNoProcess) {
		t.Errorf("nil process: %v, want ErrNoProcess", err)
	}
	called := false
	w := riverqueue.NewWorker(func(context.Context, pgx.Tx, webhook.Event) error { called = true; return nil })
	if err := w.Work(context.Background(), job()); err == nil || called {
		t.Errorf("no client in context: err %v, process called %v", err, called)
	}
}
