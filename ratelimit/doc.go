// Package ratelimit paces the requests of a [resilient] client per host
// on the client's side, with [golang.org/x/time/rate]'s token buckets:
//
//	client := resilient.New(resilient.Recommended(), ratelimit.WithRateLimit(50, 10))
//
// Each attempt (retries and hedges included) takes a token from its host's
// bucket, waiting for one within the call's deadline, or fails at once
// with an error that errors.Is(err, resilient.ErrThrottled) when the wait
// would not fit.
//
// It is a module of its own so that the resilient module itself keeps no
// dependency beyond its few: importing this package is what brings in
// golang.org/x/time.
package ratelimit
