package soak_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/resilient-go/resilient/internal/testenv"
)

// durationEnv names the variable that sets how long each part runs, in
// seconds; defaultRun keeps CI fast.
const (
	durationEnv = "SOAK_SECONDS"
	defaultRun  = 10 * time.Second
)

// TestSoak runs the outbound part, then the webhook part, each for
// SOAK_SECONDS, then checks that no goroutine and no file descriptor was
// left over, and logs the figures of the run. The parts run one after the
// other because the deadline check needs the process to be scheduled on
// time: run side by side on two cores with the race detector, the killer's
// reconnection storms and 200 callers stall the process for 100–300 ms.
// -run Soak/outbound or Soak/webhooks runs one part.
func TestSoak(t *testing.T) {
	run := soakDuration(t)
	dsn := testenv.Postgres(t)
	redisAddr := testenv.Redis(t)

	goroutines := goleak.IgnoreCurrent()
	fdsBefore := openFDs()
	var (
		out   *outboundFigures
		hooks *webhookFigures
	)
	stalls := watchStalls()
	t.Run("outbound", func(t *testing.T) { out = runOutbound(t, run, stalls) })
	between := time.Now()
	t.Run("webhooks", func(t *testing.T) { hooks = runWebhooks(t, run, dsn, redisAddr) })
	stalls.stop()
	leaks := checkLeaks(t, goroutines, fdsBefore)
	t.Log("figures of the soak, " + run.String() + " per part:\n" + figuresTable(out, hooks, leaks) +
		fmt.Sprintf("process stalls (a %v ticker late): outbound %s; webhooks %s\n", stallEvery,
			stalls.summary(stalls.start, between), stalls.summary(between, time.Now())))
}

// soakDuration reads SOAK_SECONDS: a whole or fractional number of
// seconds, at least 1; unset means defaultRun.
func soakDuration(t *testing.T) time.Duration {
	v := os.Getenv(durationEnv)
	if v == "" {
		return defaultRun
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || !(secs >= 1) || secs > 24*3600 {
		t.Fatalf("%s=%q: want a number of seconds from 1 to 86400", durationEnv, v)
	}
	return time.Duration(secs * float64(time.Second))
}

// leakFigures is what checkLeaks found.
type leakFigures struct {
	goroutineErr        error
	fdsBefore, fdsAfter int // -1 where /proc/self/fd cannot be read
}

// fdTolerance is how many more descriptors than at the start may be open
// at the end: those the runtime opens once and keeps (the race detector's,
// the netpoller's), not one per connection.
const fdTolerance = 4

// checkLeaks fails t for goroutines that are not in before and outlived the
// parts (goleak retries while they wind down) and for file descriptors
// opened since fdsBefore and still open, beyond fdTolerance.
func checkLeaks(t *testing.T, before goleak.Option, fdsBefore int) leakFigures {
	t.Helper()
	l := leakFigures{fdsBefore: fdsBefore}
	if l.goroutineErr = goleak.Find(before); l.goroutineErr != nil {
		t.Errorf("goroutines left over after the soak: %v", l.goroutineErr)
	}
	l.fdsAfter = openFDs()
	if fdsBefore >= 0 && l.fdsAfter > fdsBefore+fdTolerance {
		t.Errorf("file descriptors: %d open before the soak, %d after it (tolerance %d): leaked", fdsBefore, l.fdsAfter, fdTolerance)
	}
	return l
}

// openFDs returns how many file descriptors the process has open, or -1
// where /proc/self/fd does not exist.
func openFDs() int {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(fds)
}
