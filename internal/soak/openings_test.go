package soak_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/resilient-go/resilient"
)

// opening is a breaker that opened: when and from which state.
type opening struct {
	at   time.Time
	from resilient.State
}

// failure is an attempt that ended in an error or a status of 429 or 5xx,
// observed at end.
type failure struct {
	end                       time.Time
	took                      time.Duration
	method, path, reason, err string
	attempt, status           int
}

// failuresBefore describes the failed attempts observed within window
// before at (and a little after, for observers that ran late).
func (o *outbound) failuresBefore(at time.Time, window time.Duration) []string {
	var list []string
	for _, f := range o.failures {
		if f.end.After(at.Add(-window)) && f.end.Before(at.Add(window/10)) {
			outcome := fmt.Sprint(f.status)
			if f.err != "" {
				outcome = f.err
			}
			list = append(list, fmt.Sprintf("%.3fs %s %s attempt %d %s after %v: %s", o.plan.offset(f.end).Seconds(),
				f.method, f.path, f.attempt, f.reason, f.took.Round(time.Millisecond), outcome))
		}
	}
	return list
}

// describeOpenings lists openings (at most 10) as offsets into the run,
// each with how long after the start of the latest 429 episode it came and
// the attempts that failed shortly before it.
func (o *outbound) describeOpenings(ops []opening) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	p := o.plan
	var b strings.Builder
	for i, op := range ops {
		if i == 10 {
			fmt.Fprintf(&b, " …")
			break
		}
		fmt.Fprintf(&b, "\n%.3fs", p.offset(op.at).Seconds())
		if s := p.sinceThrottle(op.at); s >= 0 {
			fmt.Fprintf(&b, " (%.2fs after a 429 episode began)", s.Seconds())
		}
		s := o.stalls.worst(op.at.Add(-attemptTimeout), op.at)
		fmt.Fprintf(&b, ", the process stalled up to %v in the %v before, after these failed attempts:\n\t%s",
			s.late.Round(time.Millisecond), attemptTimeout, strings.Join(o.failuresBefore(op.at, 300*time.Millisecond), "\n\t"))
	}
	return b.String()
}
