// Package pgstore keeps the webhook dedupe state of a fleet of receivers in
// PostgreSQL, so that an event delivered to any replica is processed once
// for all of them. It has two modes.
//
// Transactional exactly-once, [Store.Handler]: the record that an event is
// done and everything the process function writes through its pgx.Tx
// commit in one transaction. A crash, an error or a panic leaves no trace
// and the redelivery processes the event; a committed event is never
// processed again. Use it when the effects of an event live in the same
// database.
//
//	POST, verified by webhook.Receiver
//	  └ BEGIN; INSERT dedupe row (done)   committed before → ROLLBACK, 200
//	                                      open elsewhere → wait ≤ StoreTimeout/2, then 409
//	     └ process(ctx, tx, event)        error or panic → ROLLBACK, 500
//	        │                             the connection died under it → 503
//	        └ COMMIT                      200; failed → 503, the redelivery finds out
//
// Lease-based, [Store] as the [webhook.Store] of [webhook.Handler]: each
// method is one SQL statement and no transaction is held while process
// runs, so process may have effects anywhere (an email, another API). The
// handler claims the event for a lease, renews it while process runs, and
// marks it done after; a token fences out a holder whose lease was taken
// over. This is at-least-once with dedupe: an effect whose process dies
// after acting but before Complete runs again on the redelivery.
//
// Either way the table holds one row per event: the key (the hash
// [webhook.Event.Key], never the raw id), the holder's token, whether it is
// done, and when the row expires. Every time is the database's now(), so
// that replicas with skewed clocks agree. [Store.Prune] deletes expired
// rows; [WithPruneInterval] runs it in the background until [Store.Close].
//
// # Killed connections
//
// Transactional: a connection that dies at any point (a killed backend, a
// restart, a dropped network) rolls the transaction back, and the
// delivery gets 503 with Retry-After, also when it died under a statement
// of process: the redelivery processes the event, once. Only a COMMIT
// whose answer was lost is in doubt, and the redelivery finds out (200 if
// it committed).
//
// Lease-based: Extend, Complete and Release are fenced by the claim's
// token, so the store runs them again on another connection when theirs
// fails, within the context the handler gives them (the store timeout,
// and for Extend the lease), never past it. A Complete whose answer was
// lost after it committed is recognised by its retry. What remains
// unguaranteed:
//   - a database out of reach for the whole store timeout, or a lease that
//     ran out before Complete: the event is not recorded as done, and a
//     redelivery after the lease processes it again (at-least-once);
//   - an effect applied by a process that dies before Complete: the same;
//   - Release retried after its answer was lost reports
//     [webhook.ErrLeaseLost] though it released the claim (the handler
//     reports it; the answer is 500 either way);
//   - Claim is not retried: its failure is answered 503, and the sender
//     retries.
package pgstore
