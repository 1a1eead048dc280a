package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resilient-go/resilient/internal/testenv"
)

// TestRun runs the fleet on the test PostgreSQL (skipped without it, a
// failure under CI=true) and checks its numbers: every delivery
// acknowledged, one job per event, each event processed once, the dead
// letters exactly the always-failing type plus the events unlucky three
// times, and after the replay all 500 processed once.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	sum, err := runOn(ctx, &out, dsn)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}

	wantDead, brokenEvents := 0, 0
	for i := range events {
		id := eventID(i)
		switch {
		case i%25 == 24:
			wantDead++
			brokenEvents++
		case flaky(id, 1) && flaky(id, 2) && flaky(id, 3):
			wantDead++
		}
	}
	want := summary{
		Sent: 999, Acked: 999, Jobs: events,
		Processed: events - wantDead, DeadLettered: wantDead,
		FinalProcessed: events, AppliedTwice: 0, FinalDead: 0,
	}
	if sum != want {
		t.Fatalf("summary\n got %+v\nwant %+v", sum, want)
	}
	if brokenEvents != 20 || wantDead <= brokenEvents {
		t.Fatalf("workload: %d broken events, %d dead letters expected", brokenEvents, wantDead)
	}
	for _, line := range []string{"deliveries sent 999, acknowledged 999; jobs queued 500", "total"} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("output lacks %q", line)
		}
	}
}

// Without PostgreSQL the example says so in one line, with how to start
// it, and succeeds.
func TestRunWithoutPostgres(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out bytes.Buffer
	if _, err := runOn(context.Background(), &out, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2"); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.Count(got, "\n") != 1 || !strings.Contains(got, "pg_ctlcluster --skip-systemctl-redirect") {
		t.Fatalf("output %q, want one line with how to start PostgreSQL", got)
	}
}
