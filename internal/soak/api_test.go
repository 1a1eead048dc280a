package soak_test

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/resilient-go/resilient/resilienttest"
)

// The everyday faults of the API, per request: 4.5 % that a breaker counts
// as failures (500, 503, reset, broken or lost response, hang), so that
// five in a row, which trips a default breaker, come by chance about once
// in 5 million requests; truncated bodies and slow answers besides.
func everydayFaults(seed uint64) *resilienttest.Faults {
	return resilienttest.Rate(seed,
		resilienttest.Weighted(0.010, resilienttest.Status(http.StatusInternalServerError)),
		resilienttest.Weighted(0.010, resilienttest.Status(http.StatusServiceUnavailable)),
		resilienttest.Weighted(0.005, resilienttest.Reset()),
		resilienttest.Weighted(0.005, resilienttest.BrokenResponse()),
		resilienttest.Weighted(0.010, resilienttest.LostResponse()),
		resilienttest.Weighted(0.005, resilienttest.Stall()),
		resilienttest.Weighted(0.020, resilienttest.Truncate(64)),
		resilienttest.Weighted(0.060, resilienttest.Latency(60*time.Millisecond)),
		resilienttest.Weighted(0.030, resilienttest.Latency(180*time.Millisecond)),
	)
}

// outageFaults are the answers of the API while it is down.
func outageFaults(seed uint64) *resilienttest.Faults {
	return resilienttest.Rate(seed,
		resilienttest.Weighted(0.5, resilienttest.Status(http.StatusServiceUnavailable)),
		resilienttest.Weighted(0.5, resilienttest.BrokenResponse()),
	)
}

// Shares of the answers that the API itself makes slow: a body whose
// second half comes after a pause, and a charge that takes long to make
// (long enough for a hedge or a retry to find it in progress).
const (
	slowBodyShare   = 0.10
	slowChargeShare = 0.05
)

// api is the loopback server of the outbound part: GET /balance and an
// idempotent POST /charges, behind the plan's outage, overloads and
// throttle episodes and the everyday faults.
type api struct {
	plan       plan
	everyday   http.Handler
	overloaded http.Handler // the everyday faults, and hangs
	outage     http.Handler
	ledger     ledger
}

func newAPI(p plan, seed uint64) *api {
	a := &api{plan: p, ledger: ledger{keys: map[string]*charge{}, applied: map[string]int{}}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /balance", func(w http.ResponseWriter, r *http.Request) { write(w, r, http.StatusOK, balance) })
	mux.HandleFunc("POST /charges", a.charge)
	a.everyday = everydayFaults(seed).Handler(mux)
	a.overloaded = resilienttest.Rate(seed+2, resilienttest.Weighted(overloadHang, resilienttest.Stall())).Handler(a.everyday)
	a.outage = outageFaults(seed + 1).Handler(nil)
	return a
}

func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	if a.plan.down(now) {
		a.outage.ServeHTTP(w, r)
		return
	}
	if left := a.plan.throttled(now); left > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((left+time.Second-1)/time.Second)))
		http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
		return
	}
	if a.plan.overloaded(now) {
		a.overloaded.ServeHTTP(w, r)
		return
	}
	a.everyday.ServeHTTP(w, r)
}

// balance is the body of GET /balance: 2 KiB of JSON.
var balance = []byte(`{"balance":[` + strings.Repeat(`{"currency":"eur","amount":1000},`, 63) + `{"currency":"eur","amount":1000}]}`)

// ledger is the payments side of the API: a charge is made once per
// idempotency key, as Stripe does (a key in progress is answered 409, a
// key done is answered its first answer again), and counted per payment
// id, which the client keeps for every attempt and call of one payment:
// a payment charged twice was charged under two keys.
type ledger struct {
	mu         sync.Mutex
	keys       map[string]*charge // by idempotency key
	applied    map[string]int     // by payment id
	charges    int                // made
	duplicates int                // made for a payment charged before
	inProgress int                // answered 409
	replays    int                // answered from a key done
}

type charge struct {
	payment string
	answer  []byte // nil while the charge is in progress
}

func (a *api) charge(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<10))
	if err != nil {
		return // the client went away
	}
	var req struct {
		Payment string `json:"payment"`
	}
	if key == "" || json.Unmarshal(body, &req) != nil || req.Payment == "" {
		http.Error(w, "a charge needs an Idempotency-Key and a payment", http.StatusBadRequest)
		return
	}
	l := &a.ledger
	l.mu.Lock()
	c := l.keys[key]
	switch {
	case c == nil:
		c = &charge{payment: req.Payment}
		l.keys[key] = c
	case c.payment != req.Payment:
		l.mu.Unlock()
		http.Error(w, "idempotency key reused for another payment", http.StatusUnprocessableEntity)
		return
	case c.answer == nil:
		l.inProgress++
		l.mu.Unlock()
		http.Error(w, "a request with this idempotency key is in progress", http.StatusConflict)
		return
	default:
		l.replays++
		answer := c.answer
		l.mu.Unlock()
		write(w, r, http.StatusCreated, answer)
		return
	}
	l.mu.Unlock()
	// The charge is made whether or not the client waits for it.
	work := time.Duration(2+rand.N(10)) * time.Millisecond
	if rand.Float64() < slowChargeShare {
		work = 150 * time.Millisecond
	}
	<-time.After(work)
	answer := []byte(`{"payment":"` + req.Payment + `","status":"succeeded"}`)
	l.mu.Lock()
	l.applied[req.Payment]++
	l.charges++
	if l.applied[req.Payment] > 1 {
		l.duplicates++
	}
	c.answer = answer
	l.mu.Unlock()
	write(w, r, http.StatusCreated, answer)
}

// write answers status and body, with a pause in the middle of the body
// for a share of the answers.
func write(w http.ResponseWriter, r *http.Request, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if rand.Float64() >= slowBodyShare {
		_, _ = w.Write(body)
		return
	}
	half := len(body) / 2
	_, _ = w.Write(body[:half])
	_ = http.NewResponseController(w).Flush()
	select {
	case <-time.After(time.Duration(20+rand.N(130)) * time.Millisecond):
	case <-r.Context().Done():
		return
	}
	_, _ = w.Write(body[half:])
}
