// Package redisstore is a [webhook.Store] on Redis, for receivers that run
// as several replicas: every replica's [webhook.Handler] claims events in
// the same Redis, so a redelivery that reaches another replica is answered
// 409 while the event is being processed and 200 once it is done.
//
//	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
//	h := webhook.Handler(verifier, process, webhook.WithStore(redisstore.New(client)))
//
// # What it guarantees
//
// Lease-based at-least-once with dedupe, not exactly-once. Among
// concurrent deliveries of one event exactly one claim wins (SET NX is
// atomic); a done event is remembered for the handler's keep (72 h by
// default) and not processed again. The winner holds its claim for a
// lease that the handler renews while process runs, and every Extend,
// Complete and Release checks the holder's token, so a delivery whose
// lease ran out cannot complete or release the claim of the delivery that
// took over. An event is processed a second time only when its side effect
// happened but was not recorded as done: the process crashed or was cut
// off from Redis past its lease, or Complete failed on every attempt
// within the store timeout. Process functions that must never run twice
// need their own idempotency, or the transactional store of
// webhook/pgstore.
//
// # Killed connections
//
// go-redis re-sends a command whose connection broke (EOF, a reset, a
// refused dial) up to the client's MaxRetries (3 by default), but not
// after a read timeout (the reply may still come), not with MaxRetries
// -1, and its retries can run out before the store timeout does. So the
// store runs Extend, Complete and Release again itself when their
// connection fails, until they succeed or their context ends (the store
// timeout the handler gives them, never past it). Running them twice is
// safe: each script changes the key only while it holds the claim's
// token, so neither a re-run nor a first run that Redis executes late
// can touch another delivery's claim. Their answers on a re-run, after
// the first run's reply was lost:
//   - Complete writes a done marker that names its call ("d:<nonce>") and
//     accepts it on a re-run: it answers nil, as the first run did; a
//     second, separate Complete gets [webhook.ErrLeaseLost].
//   - Extend renews the lease again from Redis's now: the same effect.
//   - Release finds the key gone, or taken by another delivery and left
//     alone, and reports ErrLeaseLost though the claim was released as
//     asked (the handler reports it; the answer is 500 either way).
//   - Claim is not retried by the store: a failure is answered 503 and
//     the sender retries. go-redis may re-send it: the claim script
//     answers Claimed again for its own token.
//
// What remains: Redis out of reach for the whole store timeout, or a
// lease that ran out before Complete, leaves the event unrecorded, and a
// redelivery after the lease processes it again; so does a done mark lost
// to a failover (asynchronous replication) or an eviction.
//
// # What it needs from Redis
//
// Keys live as long as their PX says; nothing is pruned. Redis must keep
// them: maxmemory-policy noeviction (evicting a done key lets its event be
// processed again), and persistence (appendonly yes) if a restart must not
// forget which events are done. With asynchronous replication a failover
// can lose the last writes, and with them claims and done marks. Each
// operation touches one key, so Redis Cluster works; keys spread over the
// shards by their hash. Time is the Redis server's, so the receivers'
// clocks need not agree.
//
// Memory: an event is one key of 72 bytes (prefix and 64 hex characters)
// with a 28-byte value and an expiry, about 220 bytes of Redis memory
// (100 000 done keys took 22 MB on Redis 7.0). A receiver that sees a
// million events in the 72 h keep needs about 220 MB.
package redisstore
