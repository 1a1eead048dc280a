package riverqueue_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

// effects is the test's record of applied effects, written through the
// worker's transaction: one row per event id with the number of times its
// effect committed.
const effectsDDL = `
CREATE TABLE effects (event_id text PRIMARY KEY, n int NOT NULL);
CREATE TABLE gate (id int PRIMARY KEY);
CREATE TABLE poison (gate_id int REFERENCES gate (id) DEFERRABLE INITIALLY DEFERRED);`

// applyEffect counts one application of e's effect in tx.
func applyEffect(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
	_, err := tx.Exec(ctx, `INSERT INTO effects (event_id, n) VALUES ($1, 1)
		ON CONFLICT (event_id) DO UPDATE SET n = effects.n + 1`, e.ID)
	return err
}

// effectCount returns how many times id's effect committed.
func effectCount(t testing.TB, pool *pgxpool.Pool, id string) int {
	t.Helper()
	var n int
	err := pool.QueryRow(context.Background(), "SELECT n FROM effects WHERE event_id = $1", id).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// onceEach fails the first call per event id with the crash it simulates,
// after the effect was written, and succeeds afterwards.
type onceEach struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (o *onceEach) first(id string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.seen[id] {
		return false
	}
	o.seen[id] = true
	return true
}

// An attempt that dies after process wrote its effect (the commit fails,
// process panics, the attempt times out) leaves no trace; the retry applies
// the effect, and it is applied once.
func TestWorkerCrashBeforeCommitAppliesOnce(t *testing.T) {
	s := newSchema(t)
	pool := s.pool(t)
	if _, err := pool.Exec(context.Background(), effectsDDL); err != nil {
		t.Fatal(err)
	}
	crashes := &onceEach{seen: map[string]bool{}}
	process := func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
		if err := applyEffect(ctx, tx, e); err != nil {
			return err
		}
		if !crashes.first(e.ID) {
			return nil
		}
		switch riverqueue.NewEventArgs(e).Type {
		case "commit.fails": // a deferred foreign key fails the COMMIT itself
			_, err := tx.Exec(ctx, "INSERT INTO poison (gate_id) VALUES (1)")
			return err
		case "panics":
			panic("worker died after writing its effect")
		case "hangs":
			<-ctx.Done()
			return ctx.Err()
		case "superseded": // River requeues the job as stuck while this attempt is alive
			_, err := pool.Exec(ctx, "UPDATE river_job SET state = 'available' WHERE args->>'id' = $1", e.ID)
			return err
		}
		return nil
	}
	client := newClient(t, pool, s.config(workers(riverqueue.NewWorker(process, riverqueue.WithAttemptTimeout(time.Second)))))
	events, cancel := client.Subscribe(river.EventKindJobCompleted)
	defer cancel()

	for _, tt := range []struct{ typ, firstErr string }{
		{"commit.fails", "commit"},
		{"panics", "worker died after writing its effect"},
		{"hangs", "context deadline exceeded"},
		{"superseded", ""},
	} {
		typ := tt.typ
		t.Run(typ, func(t *testing.T) {
			id := "evt_" + typ
			if _, err := client.Insert(context.Background(), riverqueue.NewEventArgs(webhook.Event{ID: id, Body: body(id, typ)}), nil); err != nil {
				t.Fatal(err)
			}
			ev := waitJob(t, events, id, func(*river.Event) bool { return true })
			if n := effectCount(t, pool, id); n != 1 {
				t.Fatalf("effect applied %d times, want 1", n)
			}
			if ev.Job.Attempt != 2 {
				t.Fatalf("completed at attempt %d, want 2", ev.Job.Attempt)
			}
			// River records the first attempt's error, except for a
			// superseded attempt: the job was not running it any more.
			if tt.firstErr == "" {
				return
			}
			if len(ev.Job.Errors) != 1 || !strings.Contains(ev.Job.Errors[0].Error, tt.firstErr) {
				t.Errorf("errors %+v, want one mentioning %q", ev.Job.Errors, tt.firstErr)
			}
		})
	}
}

// An event that always fails is discarded after exactly the configured
// attempts, is listed as a dead letter, and Replay processes it once.
func TestWorkerDeadLetterAndReplay(t *testing.T) {
	for _, tt := range []struct {
		name     string
		opts     []riverqueue.WorkerOption
		attempts int
	}{
		{"default", nil, riverqueue.DefaultAttempts},
		{"WithAttempts(2)", []riverqueue.WorkerOption{riverqueue.WithAttempts(2)}, 2},
		{"WithAttempts(7)", []riverqueue.WorkerOption{riverqueue.WithAttempts(7)}, 7},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchema(t)
			pool := s.pool(t)
			if _, err := pool.Exec(context.Background(), effectsDDL); err != nil {
				t.Fatal(err)
			}
			var fixed atomic.Bool
			process := func(ctx context.Context, tx pgx.Tx, e webhook.Event) error {
				if !fixed.Load() {
					return errors.New("processor is broken")
				}
				return applyEffect(ctx, tx, e)
			}
			client := newClient(t, pool, s.config(workers(riverqueue.NewWorker(process, tt.opts...))))
			failed, cancelFailed := client.Subscribe(river.EventKindJobFailed)
			defer cancelFailed()
			completed, cancelCompleted := client.Subscribe(river.EventKindJobCompleted)
			defer cancelCompleted()

			const id = "evt_always_fails"
			if _, err := client.Insert(context.Background(), riverqueue.NewEventArgs(webhook.Event{ID: id, Body: body(id, "always.fails")}), nil); err != nil {
				t.Fatal(err)
			}
			ev := waitJob(t, failed, id, func(ev *river.Event) bool { return ev.Job.State == rivertype.JobStateDiscarded })
			if ev.Job.Attempt != tt.attempts || len(ev.Job.Errors) != tt.attempts {
				t.Fatalf("discarded at attempt %d with %d errors, want %d", ev.Job.Attempt, len(ev.Job.Errors), tt.attempts)
			}

			dead, err := riverqueue.DeadLetters(context.Background(), client, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(dead) != 1 {
				t.Fatalf("dead letters = %+v, want 1", dead)
			}
			d := dead[0]
			if d.EventID != id || d.Type != "always.fails" || d.Attempts != tt.attempts ||
				!strings.Contains(d.LastError, "processor is broken") || d.DiscardedAt.IsZero() || d.JobID != ev.Job.ID {
				t.Fatalf("dead letter = %+v", d)
			}

			fixed.Store(true)
			if err := riverqueue.Replay(context.Background(), client, id); err != nil {
				t.Fatal(err)
			}
			waitJob(t, completed, id, func(*river.Event) bool { return true })
			if n := effectCount(t, pool, id); n != 1 {
				t.Fatalf("effect applied %d times after replay, want 1", n)
			}
			if err := riverqueue.Replay(context.Background(), client, id); !errors.Is(err, riverqueue.ErrNotDeadLettered) {
				t.Fatalf("second replay: %v, want ErrNotDeadLettered", err)
			}
			if dead, err := riverqueue.DeadLetters(context.Background(), client, 10); err != nil || len(dead) != 0 {
				t.Fatalf("dead letters after replay = %v, %v; want none", dead, err)
			}
		})
	}
}
