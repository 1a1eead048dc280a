// Package soak holds the soak test of the repository: a client and a fleet
// of webhook receivers run for SOAK_SECONDS (default 10) against servers
// that misbehave on purpose, the test checks that the promises of the
// library held for every call and every event, and logs its figures:
//
//	cd internal/soak && SOAK_SECONDS=60 go test -race -count=1 -v -run Soak ./...
//
// Two parts run one after the other:
//
//   - outbound: 200 callers share one client built as a service would
//     build it (Recommended, a 1 s attempt and 3 s total timeout, a
//     breaker that opens for 1 s, hedging, the throttle gate), against a
//     loopback payments API that answers 500, 503, resets, broken and lost
//     responses, hangs, slow and truncated bodies; every 2 s it is
//     overloaded for 500 ms (a fifth of the requests hang) and then answers
//     429 with Retry-After for 1 s; from the middle of the run it is down
//     for a sixth of it (503 or a broken connection). No call may return
//     later than its total timeout plus 50 ms, no payment may be charged
//     twice (the API counts charges per payment id, whatever the key), and
//     no circuit breaker may open outside the outage and its grace;
//   - webhooks: four receivers, two on one pgstore table in lease mode
//     (lease 3 s), one transactional pgstore, one redisstore, get 100
//     events a second, each delivered three times, two of them at once, and
//     once more after the lease ran out; senders redeliver on 409, 500, 503
//     and no answer, backing off and honouring Retry-After. Meanwhile the
//     test kills every 2 s the PostgreSQL and Redis connections of its own
//     receivers (by application_name and client name, never anyone else's).
//     Every event's effect must be applied exactly once.
//
// Afterwards no goroutine and no file descriptor may be left over. The
// figures table (go test -v) also shows how long the process itself
// stalled: a ticker that came late.
//
// It is a module of its own because it needs the stores. It needs the
// PostgreSQL and Redis of internal/testenv and is skipped without them (it
// fails under CI=true). Its timing assertions assume that the test has the
// machine's cores to itself: on a machine saturated by other work the
// whole process stalls, for hundreds of milliseconds, and then a call that
// returns late, a breaker that opens for a stalled host or a lease that
// runs out under a frozen process is the machine's doing. The failure
// messages show it: each late call and each breaker opening with the
// longest stall around it, each event applied twice with the slow store
// calls and errors reported for it.
package soak
