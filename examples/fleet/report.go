package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/riverqueue"
)

// states counts the webhook jobs by state.
type states struct {
	total, completed, discarded int
}

func jobStates(ctx context.Context, db *database) (states, error) {
	var s states
	err := db.admin.QueryRow(ctx, fmt.Sprintf(`SELECT count(*),
		count(*) FILTER (WHERE state = 'completed'), count(*) FILTER (WHERE state = 'discarded')
		FROM %s.river_job WHERE kind = $1`, pgx.Identifier{db.schema}.Sanitize()), riverqueue.Kind).
		Scan(&s.total, &s.completed, &s.discarded)
	return s, err
}

// waitFinal waits until the job states satisfy done, checking whenever a
// job finishes an attempt and at least every 200 ms.
func waitFinal(ctx context.Context, db *database, client *river.Client[pgx.Tx], done func(states) bool) (states, error) {
	events, cancel := client.Subscribe(river.EventKindJobCompleted, river.EventKindJobFailed)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		s, err := jobStates(ctx, db)
		if err != nil || done(s) {
			return s, err
		}
		select {
		case <-events:
		case <-tick.C:
		case <-ctx.Done():
			return s, fmt.Errorf("waiting for the workers: %w", ctx.Err())
		}
	}
}

// printDeadLetters lists the dead-letter queue, by type, with a few
// examples.
func printDeadLetters(ctx context.Context, out io.Writer, client *river.Client[pgx.Tx], sum *summary) error {
	dead, err := riverqueue.DeadLetters(ctx, client, riverqueue.MaxDeadLetterLimit)
	if err != nil {
		return err
	}
	sum.DeadLettered = len(dead)
	broken := 0
	for _, d := range dead {
		if d.Type == brokenType {
			broken++
		}
	}
	fmt.Fprintf(out, "  dead-letter queue: %d events (%d %s, %d unlucky: %d failed attempts in a row), for example:\n",
		len(dead), broken, brokenType, len(dead)-broken, attempts)
	shown := map[bool]int{} // by whether the type is the broken one
	for _, d := range dead {
		if broke := d.Type == brokenType; shown[broke] < 2 {
			shown[broke]++
			fmt.Fprintf(out, "    %s %-16s %d attempts, last error: %s\n", d.EventID, d.Type, d.Attempts, d.LastError)
		}
	}
	return nil
}

// effects returns how many events were applied, and how many more than
// once.
func effects(ctx context.Context, db *database) (applied, twice int, err error) {
	err = db.admin.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), count(*) FILTER (WHERE applied > 1) FROM %s.effects`,
		pgx.Identifier{db.schema}.Sanitize())).Scan(&applied, &twice)
	return applied, twice, err
}

// printTable prints the final table: per type, events, events processed,
// processed by a replay, applied more than once, dead letters left.
func printTable(ctx context.Context, out io.Writer, db *database) error {
	rows, err := db.admin.Query(ctx, fmt.Sprintf(`SELECT j.args->>'type', count(*), count(e.event_id),
		count(*) FILTER (WHERE j.attempt > $2 AND j.state = 'completed'),
		count(*) FILTER (WHERE e.applied > 1), count(*) FILTER (WHERE j.state = 'discarded')
		FROM %[1]s.river_job j LEFT JOIN %[1]s.effects e ON e.event_id = j.args->>'id'
		WHERE j.kind = $1 GROUP BY 1 ORDER BY 1`, pgx.Identifier{db.schema}.Sanitize()), riverqueue.Kind, attempts)
	if err != nil {
		return err
	}
	defer rows.Close()
	fmt.Fprintln(out, "final table:")
	const row = "  %-18s %7v %10v %9v %14v %13v\n"
	fmt.Fprintf(out, row, "type", "events", "processed", "replayed", "applied twice", "dead letters")
	var total [5]int
	for rows.Next() {
		var typ string
		var n [5]int
		if err := rows.Scan(&typ, &n[0], &n[1], &n[2], &n[3], &n[4]); err != nil {
			return err
		}
		for i := range n {
			total[i] += n[i]
		}
		fmt.Fprintf(out, row, typ, n[0], n[1], n[2], n[3], n[4])
	}
	if err := rows.Err(); err != nil {
		return err
	}
	fmt.Fprintf(out, row, "total", total[0], total[1], total[2], total[3], total[4])
	return nil
}

// syncWriter serialises writes from the receivers' goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// serve runs h on a loopback port with the timeouts a webhook receiver
// should set.
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
			fmt.Fprintln(os.Stderr, "fleet:", err)
		}
	}, nil
}
