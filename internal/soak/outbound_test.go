package soak_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/resilient-go/resilient"
)

// The client of the outbound part, as a service with 200 concurrent
// callers and a 3 s budget per call would configure it.
const (
	callers        = 200
	attemptTimeout = time.Second
	totalTimeout   = 3 * time.Second
	openTimeout    = time.Second
	overrunLimit   = 50 * time.Millisecond  // how late past totalTimeout a call may return
	paymentShare   = 0.3                    // of the calls; the others GET /balance
	rampUp         = time.Second            // over which the callers start
	thinkMin       = 150 * time.Millisecond // a caller's pause between calls
	thinkMax       = 350 * time.Millisecond
)

// outbound is the running outbound part.
type outbound struct {
	plan   plan
	url    string
	client *http.Client
	end    time.Time
	stalls *stallWatch

	attempts, hedges atomic.Int64

	mu       sync.Mutex
	openings []opening
	failures []failure // attempts that failed, in the order observed
	total    tally
}

// runOutbound runs the callers for run against the API, then checks that no
// call returned later than totalTimeout+overrunLimit, that no payment was
// charged twice and that no breaker opened outside the outage. The
// failure messages say how long the process stalled meanwhile (stalls).
func runOutbound(t *testing.T, run time.Duration, stalls *stallWatch) *outboundFigures {
	seed := rand.Uint64()
	start := time.Now()
	o := &outbound{plan: newPlan(start, run), end: start.Add(run), stalls: stalls, total: newTally()}
	a := newAPI(o.plan, seed)
	srv := httptest.NewUnstartedServer(a)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // resets and hijacks are the point
	srv.Start()
	o.url = srv.URL

	// Many callers to one host: keep as many idle connections as callers.
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = callers
	o.client = resilient.Wrap(&http.Client{Transport: base},
		resilient.Recommended(),
		resilient.WithAttemptTimeout(attemptTimeout),
		resilient.WithTotalTimeout(totalTimeout),
		resilient.WithCircuitBreaker(resilient.BreakerPolicy{OpenTimeout: openTimeout}),
		resilient.WithHedging(resilient.HedgePolicy{}),
		resilient.WithObserver(o.observe),
	)

	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { o.caller(i) })
	}
	wg.Wait()
	o.client.CloseIdleConnections()
	srv.Close()

	f := o.figures(seed, a)
	if f.late > 0 {
		t.Errorf("%d of %d calls returned more than %v past the total timeout of %v; the latest %v past it:\n%s",
			f.late, f.calls, overrunLimit, totalTimeout, f.maxOverrun, strings.Join(o.total.lateCalls, "\n"))
	}
	if f.duplicates > 0 {
		t.Errorf("%d payments were charged twice (%d charges made)", f.duplicates, f.charges)
	}
	if len(f.outside) > 0 {
		t.Errorf("%d breakers opened outside the outage (%s), at:%s",
			len(f.outside), o.plan, o.describeOpenings(f.outside))
	}
	if f.charges == 0 || f.ok == 0 {
		t.Errorf("no charge made or no call succeeded: the soak proves nothing (%d calls)", f.calls)
	}
	return f
}

// observe counts the attempts, records those that failed, and the
// breakers that open.
func (o *outbound) observe(_ context.Context, e resilient.Event) {
	at := time.Now()
	switch {
	case e.Kind == resilient.EventAttempt:
		o.attempts.Add(1)
		if e.Reason == "hedge" {
			o.hedges.Add(1)
		}
		if e.Err == nil && e.StatusCode < 500 && e.StatusCode != http.StatusTooManyRequests {
			return
		}
		f := failure{end: at, took: e.Duration, method: e.Request.Method, path: e.Request.URL.Path,
			attempt: e.Attempt, reason: e.Reason, status: e.StatusCode}
		if e.Err != nil {
			f.err = e.Err.Error()
		}
		o.mu.Lock()
		o.failures = append(o.failures, f)
		o.mu.Unlock()
	case e.Kind == resilient.EventBreaker && e.To == resilient.StateOpen:
		o.mu.Lock()
		o.openings = append(o.openings, opening{at: at, from: e.From})
		o.mu.Unlock()
	}
}

// caller makes calls until the end of the run, with a pause between them:
// payments, a share of paymentShare, and balance reads.
func (o *outbound) caller(i int) {
	tl := newTally()
	first := rand.N(rampUp)
	for n := 0; o.pause(first + thinkMin + rand.N(thinkMax-thinkMin)); n++ {
		first = 0
		if rand.Float64() < paymentShare {
			o.pay(fmt.Sprintf("c%d-p%d", i, n), n%2 == 0, &tl)
			continue
		}
		req, _ := http.NewRequest(http.MethodGet, o.url+"/balance", nil)
		o.call(req, &tl)
	}
	o.mu.Lock()
	o.total.merge(tl)
	o.mu.Unlock()
}

// pause waits d, and reports false instead when the run ends before.
func (o *outbound) pause(d time.Duration) bool {
	if time.Now().Add(d).After(o.end) {
		return false
	}
	<-time.After(d)
	return true
}

// pay makes one payment. Half the payments carry the caller's own key
// (ContextWithIdempotencyKey) and are tried again by the caller, up to
// three calls, until one is answered 201, as a business retries a payment
// under its own key; the others get a generated key and one call.
func (o *outbound) pay(id string, ownKey bool, tl *tally) {
	body := []byte(`{"payment":"` + id + `","amount":100}`)
	for try := 0; try < 3; try++ {
		ctx := context.Background()
		if ownKey {
			ctx = resilient.ContextWithIdempotencyKey(ctx, "pay-"+id)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, o.url+"/charges", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		status := o.call(req, tl)
		tl.payments++
		if status == http.StatusConflict {
			tl.conflicts++
		}
		if status == http.StatusCreated || !ownKey || !o.pause(100*time.Millisecond) {
			return
		}
	}
}

// call sends req, reads the whole body, records the outcome and how long
// it all took, and returns the status, or 0 for an error.
func (o *outbound) call(req *http.Request, tl *tally) int {
	start := time.Now()
	resp, err := o.client.Do(req)
	headers := time.Since(start)
	status, kind := 0, ""
	if err == nil {
		status = resp.StatusCode
		_, rerr := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if rerr != nil {
			status, kind, err = 0, "body "+errorKind(rerr), rerr
		}
	} else {
		kind = errorKind(err)
	}
	d := time.Since(start)
	var late string
	// A stall of the whole process (no goroutine ran, the watch's ticker
	// included: GC under -race, a loaded machine) delays every timer
	// alike and says nothing of the library; the promise is measured
	// net of the worst stall during the call.
	if s := o.stalls.worst(start, start.Add(d)); d > totalTimeout+overrunLimit+s.late {
		outcome := fmt.Sprint(status)
		if err != nil {
			outcome = kind + ": " + err.Error()
		}
		late = fmt.Sprintf("%s %s made at %.3fs returned after %v, ended after %v (the process stalled up to %v meanwhile): %s",
			req.Method, req.URL.Path, o.plan.offset(start).Seconds(), headers.Round(time.Millisecond), d.Round(time.Millisecond),
			s.late.Round(time.Millisecond), outcome)
	}
	tl.record(d, status, kind, err, late)
	return status
}
