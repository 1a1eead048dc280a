// Package resilienttest tests code built on resilient, or on any HTTP
// client, without hand-written fake servers. [Faults] makes a server
// misbehave on purpose, by script or at a seeded rate: a status with
// headers (503 with Retry-After, 429), latency, a connection reset, a
// stall until the client gives up, a truncated body. [Recorder] records
// every attempt that reached it (method, URL, headers with the idempotency
// key, body) for assertions. It uses the standard library only.
//
// Both work on either side of a test. On the client side they are
// RoundTrippers that answer from memory, and wrap another RoundTripper:
//
//	faults := resilienttest.Script(
//		resilienttest.Status(503, "Retry-After", "1"), // attempt 1
//		resilienttest.Reset(),                         // attempt 2
//	)                                                  // attempt 3 and later: 200 OK
//	var rec resilienttest.Recorder
//	client := &http.Client{Transport: resilient.NewTransport(rec.Transport(faults), resilient.Recommended())}
//
// On the server side they are handler middleware for an httptest server,
// for what only a socket shows (connection reuse, a real TCP reset):
//
//	srv := httptest.NewServer(faults.Handler(rec.Handler(yourHandler)))
//
// [InMemory] serves your own handler without a socket, so a fake API can
// sit under the faults: faults.Transport(resilienttest.InMemory(api)).
//
// # Retries and breaker timeouts in no time: testing/synctest
//
// Retries wait: an exponential backoff, a Retry-After of seconds, a circuit
// breaker's OpenTimeout of 30 s. Run the test inside [testing/synctest.Test]
// (Go 1.25 and later) over an in-memory transport, and those waits take no
// real time: the bubble's fake clock jumps ahead whenever every goroutine in
// it is durably blocked (on a timer, a channel of the bubble), so a call that
// waits 1 s for Retry-After and 10 s for an attempt timeout returns at once,
// while time.Now and time.Since report the fake time that passed, to the
// nanosecond:
//
//	func TestCharge(t *testing.T) {
//		synctest.Test(t, func(t *testing.T) {
//			faults := resilienttest.Script(
//				resilienttest.Status(503, "Retry-After", "1"),
//				resilienttest.Stall(),
//			)
//			client := &http.Client{Transport: resilient.NewTransport(faults, resilient.Recommended())}
//			start := time.Now()
//			resp, err := client.Get("http://api.test/charges")
//			// err == nil, resp.StatusCode == 200 on attempt 3,
//			// time.Since(start) == 11 s plus the backoff, in ~0 s of real time.
//		})
//	}
//
// Inside a bubble:
//   - use no real socket: an httptest server or the client of [resilient.New]
//     (a clone of http.DefaultTransport) never lets the fake clock advance,
//     and the test hangs. Give the code under test a RoundTripper, or an
//     *http.Client, that it wraps ([resilient.NewTransport], [resilient.Wrap]);
//   - create the client inside the bubble, so that its timers and its
//     breaker's clock are the bubble's;
//   - a [Stall] or a [Latency] is a wait like any other: it ends when the
//     client's timeout fires, in fake time.
//
// Example functions cannot run in a bubble (synctest.Test needs a
// *testing.T), so this package's examples use the other way to keep tests
// fast: a short [resilient.RetryPolicy.InitialDelay] and Retry-After: 0.
// Both ways test the same code; the bubble also tests the real delays.
//
// # Determinism
//
// A [Script] applies its faults in order, one per attempt. A [Rate] draws
// them from a generator seeded by the test, so a failure seen once is seen
// on every run with the same seed. With concurrent requests the faults are
// handed out in order of arrival, which the scheduler decides.
package resilienttest
