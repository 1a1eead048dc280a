package soak_test

import (
	"fmt"
	"strings"
	"time"
)

// Episodes of the outbound part's API, besides its everyday faults: a
// throttle episode answers every request 429 with Retry-After until it
// ends, as a rate limit whose window is used up, and comes after a spell
// of overload in which a share of the requests hang, so that attempts are
// hanging when the gate closes; the outage, a sixth of the run from its
// middle, answers every request 503 or breaks the connection.
const (
	throttleEvery = 2 * time.Second
	throttleFor   = time.Second
	overloadFor   = 500 * time.Millisecond
	overloadHang  = 0.2 // of the requests during an overload
)

// plan says when the API is down or throttling, as offsets from start.
type plan struct {
	start                time.Time
	outageFrom, outageTo time.Duration
	// grace follows the outage: a breaker may still open then, for an
	// attempt sent during the outage that fails at its timeout, or for a
	// half-open probe of a breaker the outage opened.
	grace     time.Duration
	throttles []time.Duration // starts of the throttle episodes
}

// newPlan places the outage and the throttle episodes in a run of length
// run. No episode comes within the outage's grace on either side, so that
// a breaker that opens after a 429 is never taken for one the outage
// opened.
func newPlan(start time.Time, run time.Duration) plan {
	p := plan{start: start, outageFrom: run / 2, outageTo: run/2 + run/6, grace: openTimeout + attemptTimeout}
	for at := overloadFor + time.Second/2; at+throttleFor <= run; at += throttleEvery {
		if at+throttleFor+p.grace > p.outageFrom && at < p.outageTo+p.grace {
			continue
		}
		p.throttles = append(p.throttles, at)
	}
	return p
}

func (p plan) offset(at time.Time) time.Duration { return at.Sub(p.start) }

// down reports whether the API is in its outage at at.
func (p plan) down(at time.Time) bool {
	off := p.offset(at)
	return off >= p.outageFrom && off < p.outageTo
}

// ofOutage reports whether a breaker that opens at at may have been opened
// by the outage: during it or within its grace after.
func (p plan) ofOutage(at time.Time) bool {
	off := p.offset(at)
	return off >= p.outageFrom && off <= p.outageTo+p.grace
}

// throttled returns how long the throttle episode under way at at lasts,
// or 0 when there is none.
func (p plan) throttled(at time.Time) time.Duration {
	off := p.offset(at)
	for _, s := range p.throttles {
		if off >= s && off < s+throttleFor {
			return s + throttleFor - off
		}
	}
	return 0
}

// overloaded reports whether at falls in the overload before a throttle
// episode.
func (p plan) overloaded(at time.Time) bool {
	off := p.offset(at)
	for _, s := range p.throttles {
		if off >= s-overloadFor && off < s {
			return true
		}
	}
	return false
}

// sinceThrottle returns how long after the start of the latest throttle
// episode at came, or -1 when none had started.
func (p plan) sinceThrottle(at time.Time) time.Duration {
	off, since := p.offset(at), time.Duration(-1)
	for _, s := range p.throttles {
		if s <= off {
			since = off - s
		}
	}
	return since
}

// String describes the plan for the figures table.
func (p plan) String() string {
	ts := make([]string, len(p.throttles))
	for i, s := range p.throttles {
		ts[i] = fmt.Sprintf("%.1fs", s.Seconds())
	}
	return fmt.Sprintf("outage %.1fs–%.1fs (+%v grace), 429 episodes of %v after %v of overload at %s",
		p.outageFrom.Seconds(), p.outageTo.Seconds(), p.grace, throttleFor, overloadFor, strings.Join(ts, " "))
}
