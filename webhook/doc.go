// Package webhook verifies inbound webhooks and processes each event once,
// with the standard library only.
//
// A [Verifier] checks one signature scheme over the raw request body:
// [StandardWebhooks] (standardwebhooks.com, v1), [Stripe], [GitHub], and a
// generic [HMAC]. Every verifier compares in constant time (hmac.Equal),
// accepts several secrets at once for rotation ([WithSecrets]), and, where
// the scheme has a timestamp, rejects deliveries outside a replay window
// ([WithTolerance], 5 minutes by default, in both directions). What a
// verifier examines of an unauthenticated request is bounded
// ([MaxSignatureHeaderBytes], [MaxSignatures]).
//
// [Handler] turns a verifier and a process function into an http.Handler;
// a [Receiver] is its first half, for handlers built elsewhere:
//
//	Receiver: POST, body within the limit and the read timeout, signature valid
//	  └ Store.Claim(Event.Key)   done before → 200, not processed again
//	                             in progress elsewhere → 409, the sender retries
//	                             failed, timed out → 503 + Retry-After
//	     └ process(event)         Store.Extend every lease/3 meanwhile;
//	                              lease lost → process's ctx is cancelled
//	        error or panic → Store.Release, 500: a redelivery processes it
//	        nil            → Store.Complete, 200 (a failure is reported, see Handler)
//
// The dedupe key ([Event.Key]) is a fixed-size hash of what the sender
// signed: the id where the scheme signs it, else the body, so a replayed
// body cannot pass as a new event and an id of any size costs the store 64
// bytes.
//
// # Guarantees
//
// With a shared [Store], each event is processed once across all
// replicas, in the sense of a lease: a delivery claims the event, renews
// the claim while process runs, and records it done; every claim carries a
// token, so a holder whose lease ran out can neither complete nor release
// the next holder's claim. What this cannot exclude: a process that keeps
// running after its lease is lost (the handler cancels its context, the
// work must stop on it), and an effect applied whose Complete then failed.
// For exactly-once, the dedupe record and the effect must commit in one
// transaction: see webhook/pgstore.
//
// The default [MemoryStore] holds 100 000 events in one process: replicas
// each process every event, and past its bound it forgets done events
// early ([MemoryStore.OnEvict] reports it). Package webhook/storetest is
// the conformance suite every Store runs.
//
// Always verify the bytes as received: a JSON body that is decoded and
// encoded again no longer matches its signature.
package webhook
