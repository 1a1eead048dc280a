package riverqueue_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

// discard moves the jobs of event id to the dead-letter queue, finalized
// secondsAgo seconds ago, as River does after the last attempt.
func discard(t testing.TB, pool *pgxpool.Pool, id string, secondsAgo int) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `UPDATE river_job SET state = 'discarded', attempt = 3,
		finalized_at = now() - make_interval(secs => $2),
		errors = ARRAY['{"at":"2024-01-01T00:00:00Z","attempt":3,"error":"boom"}'::jsonb]
		WHERE args->>'id' = $1`, id, secondsAgo)
	if err != nil {
		t.Fatal(err)
	}
}

func TestDeadLettersOldestFirstWithinLimit(t *testing.T) {
	s := newSchema(t)
	pool := s.pool(t)
	client := newClient(t, pool, s.config(nil))
	for i, id := range []string{"evt_new", "evt_old", "evt_mid"} {
		if _, err := client.Insert(context.Background(), riverqueue.NewEventArgs(webhook.Event{ID: id, Body: body(id, "t")}), nil); err != nil {
			t.Fatal(err)
		}
		discard(t, pool, id, []int{10, 300, 60}[i])
	}
	tests := []struct {
		limit int
		want  []string
	}{
		{0, []string{"evt_old", "evt_mid", "evt_new"}},
		{-1, []string{"evt_old", "evt_mid", "evt_new"}},
		{2, []string{"evt_old", "evt_mid"}},
		{1 << 30, []string{"evt_old", "evt_mid", "evt_new"}},
	}
	for _, tt := range tests {
		dead, err := riverqueue.DeadLetters(context.Background(), client, tt.limit)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, d := range dead {
			got = append(got, d.EventID)
			if d.Attempts != 3 || d.LastError != "boom" || d.Type != "t" || len(d.Key) != 64 {
				t.Errorf("dead letter %+v", d)
			}
		}
		if len(got) != len(tt.want) {
			t.Fatalf("limit %d: %v, want %v", tt.limit, got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Fatalf("limit %d: %v, want %v", tt.limit, got, tt.want)
			}
		}
	}
}

// Two operators replaying one event at once queue it once; an id with two
// dead jobs (same id, different bodies) gets both back.
func TestReplayConcurrentQueuesOnce(t *testing.T) {
	s := newSchema(t)
	pool := s.pool(t)
	client := newClient(t, pool, s.config(nil))
	const id = "evt_replayed"
	for _, b := range [][]byte{body(id, "a"), body(id, "b")} {
		// WithEventID-style keys bind the id to the body: two jobs.
		if _, err := client.Insert(context.Background(), riverqueue.NewEventArgs(webhook.Event{ID: id, Body: b}), nil); err != nil {
			t.Fatal(err)
		}
	}
	discard(t, pool, id, 1)

	const replays = 8
	errs := make([]error, replays)
	var wg sync.WaitGroup
	for i := range replays {
		wg.Go(func() { errs[i] = riverqueue.Replay(context.Background(), client, id) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, riverqueue.ErrNotDeadLettered):
			t.Fatalf("replay: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d replays succeeded, want 1", ok)
	}
	if got := jobs(t, pool); got["available"] != 2 || len(got) != 1 {
		t.Fatalf("jobs by state = %v, want 2 available", got)
	}
}

func TestReplayUnknownEvent(t *testing.T) {
	s := newSchema(t)
	client := newClient(t, s.pool(t), s.config(nil))
	if err := riverqueue.Replay(context.Background(), client, "evt_never_seen"); !errors.Is(err, riverqueue.ErrNotDeadLettered) {
		t.Fatalf("Replay = %v, want ErrNotDeadLettered", err)
	}
}

func TestNilClient(t *testing.T) {
	if _, err := riverqueue.DeadLetters(context.Background(), nil, 1); !errors.Is(err, riverqueue.ErrNoClient) {
		t.Errorf("DeadLetters(nil) = %v", err)
	}
	if err := riverqueue.Replay(context.Background(), nil, "x"); !errors.Is(err, riverqueue.ErrNoClient) {
		t.Errorf("Replay(nil) = %v", err)
	}
}
