package resilient

// Which answer a hedged round keeps when a 409 Conflict answers an attempt
// of a request with an idempotency key (the round itself is in
// hedgeround.go).

import "net/http"

// stillRunning reports whether o is a 409 Conflict to a hedge of a request
// with an idempotency key that must not end the round: while an earlier
// attempt of the round is in flight, the server is still processing that
// one; and when an earlier attempt failed in a way worth a retry (kept)
// and attempts are left (n sent), a retry asks the server for that
// attempt's stored answer, where the 409 would end the call on "still in
// progress" for a request the server may have completed (see round).
func (t *callTransport) stillRunning(req *http.Request, o attemptOutcome, inflight []*attemptOutcome, kept *attemptOutcome, n int) bool {
	if !t.conflict(req, &o) {
		return false
	}
	for _, l := range inflight {
		if l.n < o.n {
			return true
		}
	}
	return kept != nil && kept.resp == nil && kept.n < o.n && n < t.retry.MaxAttempts
}

// replaces reports whether o, an outcome worth a retry (or a held 409),
// replaces kept as the round's answer: a response beats an error, and a
// later error an earlier one; but while attempts are left (n sent), the
// retryable failure of an earlier attempt beats a 409 Conflict to a hedge,
// whichever came first (see stillRunning).
func (t *callTransport) replaces(req *http.Request, o attemptOutcome, kept *attemptOutcome, n int) bool {
	if n < t.retry.MaxAttempts {
		switch {
		case o.resp == nil && t.conflict(req, kept):
			return true
		case kept.resp == nil && t.conflict(req, &o):
			return false
		}
	}
	return o.resp != nil || kept.resp == nil
}

// conflict reports whether o is a 409 Conflict to an attempt of a request
// with an idempotency key.
func (t *callTransport) conflict(req *http.Request, o *attemptOutcome) bool {
	return o.resp != nil && o.resp.StatusCode == http.StatusConflict && hasIdempotencyKey(req, t.idemHeader)
}
