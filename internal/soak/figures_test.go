package soak_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/resilient-go/resilient"
)

// tally is what callers saw: one per caller while it runs, merged at the
// end.
type tally struct {
	durations           []time.Duration   // of every call, the body read included
	statuses            map[int]int       // calls answered, by status
	errs                map[string]int    // calls failed, by kind (errorKind)
	samples             map[string]string // one error text per kind
	late                int               // calls past totalTimeout+overrunLimit
	lateCalls           []string          // the first maxListings of them
	payments, conflicts int               // payment calls, and those answered 409
}

func newTally() tally {
	return tally{statuses: map[int]int{}, errs: map[string]int{}, samples: map[string]string{}}
}

// record counts a call that took d, the body read included, with status
// or an error of kind; late describes it when it ended past
// totalTimeout+overrunLimit.
func (tl *tally) record(d time.Duration, status int, kind string, err error, late string) {
	tl.durations = append(tl.durations, d)
	if late != "" {
		tl.late++
		if len(tl.lateCalls) < maxListings {
			tl.lateCalls = append(tl.lateCalls, late)
		}
	}
	if kind == "" {
		tl.statuses[status]++
		return
	}
	tl.errs[kind]++
	if _, ok := tl.samples[kind]; !ok {
		tl.samples[kind] = err.Error()
	}
}

func (tl *tally) merge(o tally) {
	tl.durations = append(tl.durations, o.durations...)
	for k, n := range o.statuses {
		tl.statuses[k] += n
	}
	for k, n := range o.errs {
		tl.errs[k] += n
	}
	for k, s := range o.samples {
		if _, ok := tl.samples[k]; !ok {
			tl.samples[k] = s
		}
	}
	tl.late += o.late
	tl.lateCalls = append(tl.lateCalls, o.lateCalls[:min(len(o.lateCalls), maxListings-len(tl.lateCalls))]...)
	tl.payments += o.payments
	tl.conflicts += o.conflicts
}

// errorKind names the kind of a call's error for the figures.
func errorKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, resilient.ErrThrottled):
		return "throttled"
	case errors.Is(err, resilient.ErrCircuitOpen):
		return "circuit open"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "other"
}

// outboundFigures are the figures of the outbound part.
type outboundFigures struct {
	plan                                     plan
	seed                                     uint64
	tally                                    tally
	calls, ok, late                          int
	p50, p99, maxOverrun                     time.Duration
	inside, reopened                         int       // breaker openings of the outage; probes failing after it
	outside                                  []opening // breakers that opened closed, outside the outage
	charges, duplicates, inProgress, replays int       // the ledger's
	attempts, hedges                         int64
}

func (o *outbound) figures(seed uint64, a *api) *outboundFigures {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := &outboundFigures{plan: o.plan, seed: seed, tally: o.total, calls: len(o.total.durations), late: o.total.late,
		attempts: o.attempts.Load(), hedges: o.hedges.Load()}
	for status, n := range o.total.statuses {
		if status >= 200 && status < 300 {
			f.ok += n
		}
	}
	if d := slices.Sorted(slices.Values(o.total.durations)); len(d) > 0 {
		f.p50, f.p99 = d[len(d)/2], d[len(d)*99/100]
		f.maxOverrun = d[len(d)-1] - totalTimeout
	}
	for _, op := range o.openings {
		switch {
		case o.plan.ofOutage(op.at):
			f.inside++
		case op.from == resilient.StateHalfOpen:
			// A probe failed: the opening that made the breaker
			// half-open was counted already.
			f.reopened++
		default:
			f.outside = append(f.outside, op)
		}
	}
	l := &a.ledger
	l.mu.Lock()
	defer l.mu.Unlock()
	f.charges, f.duplicates, f.inProgress, f.replays = l.charges, l.duplicates, l.inProgress, l.replays
	return f
}

// figuresTable formats the figures of the parts that ran (nil for one
// that did not) and of the leak checks.
func figuresTable(out *outboundFigures, hooks *webhookFigures, l leakFigures) string {
	var b strings.Builder
	row := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "  %-22s "+format+"\n", append([]any{name}, args...)...)
	}
	if out != nil {
		pct := 0.0
		if out.calls > 0 {
			pct = 100 * float64(out.ok) / float64(out.calls)
		}
		fmt.Fprintf(&b, "outbound: %d callers, attempt %v, total %v, breaker open %v; %s; seed %d\n",
			callers, attemptTimeout, totalTimeout, openTimeout, out.plan, out.seed)
		row("calls", "%d, success %.1f %%; %d attempts, %d of them hedges", out.calls, pct, out.attempts, out.hedges)
		row("latency", "p50 %v, p99 %v", out.p50.Round(time.Microsecond), out.p99.Round(time.Microsecond))
		row("max overrun", "%v past the total timeout (limit %v), %d calls over the limit", out.maxOverrun.Round(time.Microsecond), overrunLimit, out.late)
		row("answers", "%s", counts(out.tally.statuses))
		row("errors", "%s", counts(out.tally.errs))
		row("breaker openings", "%d of the outage, %d outside it, %d probes failing after it", out.inside, len(out.outside), out.reopened)
		row("payments", "%d calls, %d answered 409 to the caller; %d charges made, %d charged twice; server: %d in progress (409), %d replays",
			out.tally.payments, out.tally.conflicts, out.charges, out.duplicates, out.inProgress, out.replays)
		for _, k := range slices.Sorted(maps.Keys(out.tally.samples)) {
			row("  e.g. "+k, "%s", out.tally.samples[k])
		}
	}
	if hooks != nil {
		fmt.Fprintf(&b, "webhooks: %d receivers (%s), lease %v, connections killed every %v; drained %v after the run\n",
			len(hooks.receivers), strings.Join(hooks.receivers, ", "), hookLease, killEvery, hooks.drain.Round(time.Millisecond))
		row("events", "%d (%d ticks skipped at the cap of %d pending), %d deliveries (%d unanswered), %d effects: %d events duplicated, %d lost",
			hooks.events, hooks.held, maxPending, hooks.deliveries, hooks.sendErrs, hooks.effects, hooks.duplicated, hooks.lost)
		for s, sf := range hooks.streams {
			row("  "+streamNames[s], "%d events, %d effects: %d duplicated, %d lost; answers %s (500: %d process failures on purpose)",
				sf.events, sf.effects, sf.duplicated, sf.lost, counts(sf.statuses), sf.failed)
		}
		row("late redeliveries", "%d answered 200; processed again: %d late, %d after a 200 in all", hooks.late, hooks.lateAgain, hooks.again)
		row("process", "%d calls, %d failed on purpose, %d tx inserts failed", hooks.calls, hooks.failed, hooks.txFailed)
		row("store errors", "%s", counts(hooks.storeErrs))
		for _, op := range slices.Sorted(maps.Keys(hooks.errSamples)) {
			row("  e.g. "+op, "%s", hooks.errSamples[op])
		}
		row("connections killed", "PostgreSQL %d, Redis %d", hooks.killedPG, hooks.killedRedis)
	}
	leak := "none"
	if l.goroutineErr != nil {
		leak = "LEFT OVER"
	}
	fmt.Fprintf(&b, "leaks: goroutines %s; file descriptors %d before, %d after (tolerance %d)\n", leak, l.fdsBefore, l.fdsAfter, fdTolerance)
	return b.String()
}

// counts formats a map of counts in key order: "200×9, 503×2".
func counts[K int | string](m map[K]int) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%v×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
