package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
)

// newServer starts a local server that misbehaves on purpose, one way per
// path. It counts requests per path and Idempotency-Key, so that each
// scenario starts fresh.
func newServer(outage *atomic.Bool) *httptest.Server {
	var mu sync.Mutex
	seen := map[string]int{}
	next := func(r *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		k := r.URL.Path + " " + r.Header.Get("Idempotency-Key")
		seen[k]++
		return seen[k]
	}
	mux := http.NewServeMux()
	// Fails twice with 503, then works.
	mux.HandleFunc("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if next(r) <= 2 {
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello after two 503s")
	})
	// Throttles once, asking for a one-second pause.
	mux.HandleFunc("/throttled", func(w http.ResponseWriter, r *http.Request) {
		if next(r) == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		fmt.Fprint(w, "served after Retry-After")
	})
	// The first attempt stalls until the client gives up on it.
	mux.HandleFunc("/stall", func(w http.ResponseWriter, r *http.Request) {
		if next(r) == 1 {
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, "the second attempt was quick")
	})
	// Not there: a 4xx is the caller's problem, never retried.
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) {
		next(r)
		http.NotFound(w, r)
	})
	// A payment endpoint that is briefly unavailable.
	mux.HandleFunc("/charge", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if next(r) == 1 {
			http.Error(w, "gateway hiccup", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "charged once")
	})
	// A partner that is down while outage is set.
	mux.HandleFunc("/partner", func(w http.ResponseWriter, r *http.Request) {
		next(r)
		if outage.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "partner is back")
	})
	return httptest.NewServer(mux)
}
