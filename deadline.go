package resilient

// The ground of deadlines and waits that every layer keeps: the cause that
// tells a deadline of ours from the caller's own, how long a response may
// be drained before the next attempt, and the wait that ends with the
// request's context or Cancel channel.

import (
	"fmt"
	"net/http"
	"time"
)

// deadlineCause is the cause of the contexts this package ends, so that a
// deadline of ours is told apart from the caller's own (context.Cause).
type deadlineCause struct {
	scope TimeoutScope
	after time.Duration
}

func (c *deadlineCause) Error() string {
	return "resilient: " + c.scope.String() + " timeout of " + c.after.String()
}

// drainGrace is the least time a response body gets to be drained before
// a retry that waits less than that, so that its connection can be reused.
const drainGrace = 10 * time.Millisecond

// drainUntil is how long the previous response may be drained: during the
// wait, and at least drainGrace, but never past the call's deadlines.
func drainUntil(req *http.Request, now, until, end time.Time) time.Time {
	if g := now.Add(drainGrace); until.Before(g) {
		until = g
	}
	if !end.IsZero() && end.Before(until) {
		until = end
	}
	if dl, ok := req.Context().Deadline(); ok && dl.Before(until) {
		until = dl
	}
	return until
}

// waitUntil waits until the given time, or until the request's context
// ends or its Cancel channel closes, whichever comes first.
func waitUntil(req *http.Request, until time.Time) error {
	ctx := req.Context()
	d := time.Until(until)
	if d <= 0 {
		if canceled(req) {
			return fmt.Errorf("resilient: waiting to retry: %w", quote(cancelErr(req)))
		}
		return nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
	case <-req.Cancel: //lint:ignore SA1019 callers that still set it are honoured
	}
	return fmt.Errorf("resilient: waiting %v before retrying: %w", d.Round(time.Millisecond), quote(cancelErr(req)))
}
