// Command fleet runs a small webhook fleet on one PostgreSQL: three
// receivers that acknowledge each delivery as soon as it is queued in River
// (webhook/riverqueue), a sender that delivers 500 signed events with
// duplicates to all three, and River workers whose processing fails at
// random, with one event type that always fails. It prints what was sent
// and acknowledged, what was processed (each event once) and what ended in
// the dead-letter queue; then it "fixes" the processor, replays the dead
// letters and prints the final table.
//
// It is a module of its own (River and pgx stay out of the library's
// go.mod), so run it from its directory:
//
//	cd examples/fleet && go run .
//
// It uses $DATABASE_URL, or PostgreSQL on 127.0.0.1:5432 (user postgres,
// database test); its tables live in a schema of their own, dropped at the
// end. Without PostgreSQL it says so in one line and exits 0.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// defaultDSN is the local PostgreSQL of the repository's tests.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// startHint tells how to start the local PostgreSQL.
const startHint = "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

// run runs the fleet against $DATABASE_URL or the local PostgreSQL.
func run(out io.Writer) error {
	dsn := os.Getenv("DATABASE_URL")
	if dsn == "" {
		dsn = defaultDSN
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	_, err := runOn(ctx, out, dsn)
	return err
}
