package resilienttest

import (
	"math/rand/v2"
	"net/http"
	"sync"
)

// Faults injects a [Fault] into each attempt that reaches it, chosen by a
// plan: an exact sequence ([Script]), the same fault every time ([Always]),
// or a seeded random draw ([Rate]). It works on both sides of a test:
//
//   - as an [http.RoundTripper] under the client being tested: Faults
//     itself answers from memory (200 OK, body "ok", for [Pass]), and
//     [Faults.Transport] wraps another RoundTripper;
//   - as middleware of an httptest server: [Faults.Handler].
//
// In memory there is no socket, so a test can run under testing/synctest,
// where every wait of the client (backoff, Retry-After, breaker timeouts)
// and of the faults ([Latency], [Stall]) takes no real time; see the
// package documentation.
//
// All the RoundTrippers and handlers made from one Faults share its plan:
// attempt n is the n-th request to reach any of them. Faults is safe for
// concurrent use; with concurrent requests the faults are handed out in
// the plan's order, to whichever request comes first. The zero Faults
// passes every attempt.
type Faults struct {
	mu   sync.Mutex
	n    int               // attempts seen
	pick func(n int) Fault // the plan: the fault of attempt n (1-based); nil passes all
}

var _ http.RoundTripper = (*Faults)(nil)

// Script returns Faults that apply steps in order, one per attempt:
// attempt 1 gets steps[0], attempt 2 steps[1], and so on. Once the script
// is used up every attempt passes, as a server that has recovered.
//
//	resilienttest.Script(
//		resilienttest.Status(503, "Retry-After", "1"), // attempt 1
//		resilienttest.Reset(),                         // attempt 2
//		resilienttest.Pass(),                          // attempt 3, and every later one
//	)
func Script(steps ...Fault) *Faults {
	steps = append([]Fault(nil), steps...)
	return &Faults{pick: func(n int) Fault {
		if n <= len(steps) {
			return steps[n-1]
		}
		return Pass()
	}}
}

// Always returns Faults that apply f to every attempt: a host that is down.
func Always(f Fault) *Faults {
	return &Faults{pick: func(int) Fault { return f }}
}

// Choice is one entry of a [Rate] plan; make it with [Weighted].
type Choice struct {
	p     float64
	fault Fault
}

// Weighted is a [Rate] entry: f for a share p of the attempts (0.3 is 30 %).
// A negative or NaN p means 0, and a p above 1 means 1.
func Weighted(p float64, f Fault) Choice {
	if !(p > 0) {
		p = 0
	}
	return Choice{p: min(p, 1), fault: f}
}

// Rate returns Faults that draw the fault of each attempt at random from
// choices, with their probabilities; attempts that draw none of them pass.
// When the probabilities add up to more than 1 they are scaled down to add
// up to 1, so that some fault always applies.
//
// The draws come from a math/rand/v2 PCG generator seeded with seed: the
// same seed gives the same sequence of faults on every run, so a failure
// can be replayed. With concurrent requests, which request gets
// which draw depends on their order of arrival.
//
//	// 30 % 503, 10 % answered 200 ms late, 60 % fine:
//	resilienttest.Rate(42,
//		resilienttest.Weighted(0.3, resilienttest.Status(503)),
//		resilienttest.Weighted(0.1, resilienttest.Latency(200*time.Millisecond)),
//	)
func Rate(seed uint64, choices ...Choice) *Faults {
	choices = append([]Choice(nil), choices...)
	var sum float64
	for _, c := range choices {
		sum += c.p
	}
	if sum > 1 {
		for i := range choices {
			choices[i].p /= sum
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &Faults{pick: func(int) Fault { // called under f.mu
		u := rng.Float64()
		for _, c := range choices {
			if u < c.p {
				return c.fault
			}
			u -= c.p
		}
		return Pass()
	}}
}

// next counts an attempt and returns its fault.
func (f *Faults) next() Fault {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if f.pick == nil {
		return Pass()
	}
	return f.pick(f.n)
}

// Count returns how many attempts have reached f so far, through all its
// RoundTrippers and handlers.
func (f *Faults) Count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// RoundTrip applies the next fault to req, over the in-memory responder
// (see [InMemory]): a request that passes is answered 200 OK with the
// body "ok". It is Transport(nil).RoundTrip.
func (f *Faults) RoundTrip(req *http.Request) (*http.Response, error) {
	return apply(f.next(), okTransport, req)
}

// Transport returns a RoundTripper that applies f's faults to the requests
// it gets and hands those that pass, or whose response is to be truncated
// or lost, to base.
// A nil base means the in-memory responder of [Faults.RoundTrip], never
// the network. CloseIdleConnections is forwarded to base.
func (f *Faults) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		return f
	}
	return &faultTransport{f: f, base: base}
}

// Handler returns middleware that applies f's faults to the requests next
// would serve; a nil next answers 200 OK with the body "ok".
//
// Note that net/http's Transport, on the client side, may itself resend a
// request that failed on a reused keep-alive connection before any byte of
// the answer arrived ([Reset] and [LostResponse] do that) when the request is replayable (a
// GET, or a request with an Idempotency-Key header and a body it can
// produce again). That resend reaches the handler as a new attempt, and
// takes the plan's next fault. [BrokenResponse] is the connection failure
// that net/http never resends; with it, with clients that set
// DisableKeepAlives, or on the in-memory side ([Faults.Transport]), the
// handler sees every attempt exactly once.
func (f *Faults) Handler(next http.Handler) http.Handler {
	if next == nil {
		next = okHandler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(f.next(), next, w, r)
	})
}

// faultTransport is the RoundTripper of [Faults.Transport].
type faultTransport struct {
	f    *Faults
	base http.RoundTripper
}

func (t *faultTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return apply(t.f.next(), t.base, req)
}

// CloseIdleConnections forwards to the base RoundTripper.
func (t *faultTransport) CloseIdleConnections() { closeIdle(t.base) }

// closeIdle forwards CloseIdleConnections to rt when rt has it.
func closeIdle(rt http.RoundTripper) {
	if c, ok := rt.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
