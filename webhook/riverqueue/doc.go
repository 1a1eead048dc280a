// Package riverqueue acknowledges webhooks as soon as they are durably
// queued and processes them from River (github.com/riverqueue/river), the
// job queue on PostgreSQL: a few attempts with backoff, then a dead-letter
// queue to inspect and replay.
//
//	provider ── POST ──> Handler: verify (as webhook.Handler), insert one job
//	                     per event Key, 200 once committed (503 if not)
//	River ─────────────> worker: BEGIN; process(ctx, tx, event);
//	                     river.JobCompleteTx; COMMIT
//	                     error → retry with backoff; after the last attempt
//	                     the job is discarded: DeadLetters, Replay
//
// Guarantees:
//   - Nothing is acknowledged that is not queued: 200 only after the insert
//     committed; a database error or timeout answers 503 with Retry-After.
//   - One job per event: inserts are unique by the event's Key across all
//     job states, so redeliveries to any number of receivers queue nothing
//     more while the job exists (River's cleaner deletes completed jobs
//     after CompletedJobRetentionPeriod, 24 h by default: set it to the
//     senders' redelivery window, 72 h).
//   - Exactly-once effects for what process writes through tx: the effects
//     and the job's completion commit in one transaction, so an attempt that
//     dies before the commit leaves nothing, and a completed job is never
//     worked again; an attempt River gave up on as stuck cannot commit next
//     to the one that replaced it. Side effects outside tx are
//     at-least-once.
//   - No event is lost to a failing processor: after the last attempt it
//     waits in River's discarded state (kept 7 days by default,
//     DiscardedJobRetentionPeriod) until [Replay].
//
// River's tables are created by its migrations, once per database (or
// schema), before any client starts: the river CLI (river migrate-up
// --database-url ...) or, from Go, rivermigrate:
//
//	migrator, err := rivermigrate.New(riverpgxv5.New(pool), nil)
//	// handle err
//	_, err = migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
package riverqueue
