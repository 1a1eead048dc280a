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
package pgstore
