// Package redisfleet shares the outbound state of a
// [github.com/resilient-go/resilient] client across the replicas of a
// service, through one Redis: a quota per host that all replicas keep
// together, the throttle gate that a 429 closes, and the circuit breaker
// that a failing host opens.
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
//	f := redisfleet.New(rdb, redisfleet.WithLogger(logger))
//	defer f.Close()
//	client := resilient.New(resilient.Recommended(),
//		resilient.WithLimiter(f.Limiter(redisfleet.Quota{Limit: 100})), // 100/s per host, fleet-wide
//		resilient.WithFleet(f))
//
// # What it guarantees
//
//   - No Redis round trip per request. A [Limiter] leases a share of the
//     quota per key and spends it from a local token bucket; shares are
//     renewed in the background every quarter of the lease period and
//     follow demand (max-min fair). The grants never add up to more than
//     the quota; a dead replica's share returns to the others within one
//     lease period, and a replica that leaves with [Fleet.Close] gives it
//     back at once.
//   - A gate that a 429 (Retry-After or RateLimit fields) closes on one
//     replica closes on the others when the pub/sub message arrives,
//     typically within milliseconds.
//   - A breaker that opens on one replica opens on the others until its
//     probe time; then one replica per OpenTimeout probes (a Redis key set
//     with NX), and its success lets the others probe and close.
//   - Redis down or slow never blocks a request: every Redis operation has
//     its own deadline ([WithTimeout]), even on a client that does not
//     honour contexts. On failure each replica keeps its lease until it
//     would expire, then spends its fallback share (the quota divided by
//     the replicas it last saw), and keeps its own gates and breakers; it
//     logs once, and rejoins when Redis answers again.
//
// When only one replica loses Redis while the others keep it, the others
// take its share back after the lease period while it spends its fallback
// share: the fleet may then send up to one share more than the quota.
package redisfleet
