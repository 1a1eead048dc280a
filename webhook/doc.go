// Package webhook verifies inbound webhooks and processes each event exactly
// once, with the standard library only.
//
// A [Verifier] checks one signature scheme over the raw request body:
// [StandardWebhooks] (standardwebhooks.com, v1), [Stripe], [GitHub], and a
// generic [HMAC]. Every verifier compares in constant time (hmac.Equal),
// accepts several secrets at once for rotation ([WithSecrets]), and, where
// the scheme has a timestamp, rejects deliveries outside a replay window
// ([WithTolerance], 5 minutes by default, in both directions).
//
// [Handler] turns a verifier and a process function into an http.Handler that
// reads a bounded body, verifies it, and calls process at most once per event
// id, also when two deliveries of one event arrive at the same moment:
//
//	POST, body within the limit, signature valid
//	  └ Store.Claim(id)   done before → 200, not processed again
//	                      in progress elsewhere → 409, the sender retries
//	     └ process(event) error → Store.Release, 500: a redelivery processes it
//	                      nil → Store.Complete, 200
//
// Always verify the bytes as received: a JSON body that is decoded and
// encoded again no longer matches its signature.
package webhook
