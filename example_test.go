package resilient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilient-go/resilient"
)

// flakyServer answers 503 to the first n requests, then 200 "ok".
func flakyServer(n int32) *httptest.Server {
	var calls atomic.Int32
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= n {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
}

func ExampleNew() {
	srv := flakyServer(2)
	defer srv.Close()

	client := resilient.New(resilient.Recommended())
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 ok
}

func ExampleWrap() {
	srv := flakyServer(1)
	defer srv.Close()

	// An existing client keeps its Jar, CheckRedirect and Timeout; only its
	// transport is wrapped, on a copy.
	existing := &http.Client{Timeout: 5 * time.Second}
	client := resilient.Wrap(existing, resilient.WithRetry(resilient.RetryPolicy{}))

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, client.Timeout, existing.Transport == nil)
	// Output: 200 5s true
}

func ExampleNewTransport() {
	srv := flakyServer(1)
	defer srv.Close()

	// Compose with other RoundTrippers: here an auth layer outside ours, so
	// that every attempt carries the header.
	var rt http.RoundTripper = resilient.NewTransport(nil, resilient.WithRetry(resilient.RetryPolicy{}), resilient.WithAttemptTimeout(2*time.Second))
	rt = bearer{token: "t0ken", next: rt}
	client := &http.Client{Transport: rt}

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 200
}

// bearer adds an Authorization header to a copy of each request.
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(req)
}

func ExampleWithRetry() {
	srv := flakyServer(10) // down for longer than we retry
	defer srv.Close()

	client := resilient.New(resilient.WithRetry(resilient.RetryPolicy{
		MaxAttempts:  4,
		InitialDelay: 10 * time.Millisecond,
		MaxDelay:     100 * time.Millisecond,
	}))
	defer client.CloseIdleConnections()

	// When the attempts run out on a status, the last response comes back
	// whole, with a nil error.
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	// Output: 503 busy
}

func ExampleRetryError() {
	// Nothing listens on this port once the server is closed.
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()

	client := resilient.New(resilient.WithRetry(resilient.RetryPolicy{InitialDelay: time.Millisecond}))
	_, err := client.Get(url)

	var re *resilient.RetryError
	if errors.As(err, &re) {
		fmt.Println("attempts:", re.Attempts)
	}
	// Output: attempts: 3
}

func ExampleWithAttemptTimeout() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()

	client := resilient.New(resilient.WithAttemptTimeout(50 * time.Millisecond))
	defer client.CloseIdleConnections()
	_, err := client.Get(srv.URL)

	var te *resilient.TimeoutError
	fmt.Println(errors.Is(err, context.DeadlineExceeded), errors.As(err, &te) && te.Scope == resilient.ScopeAttempt)
	// Output: true true
}

func ExampleWithCircuitBreaker() {
	var down atomic.Bool
	down.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	client := resilient.New(
		resilient.WithCircuitBreaker(resilient.BreakerPolicy{ConsecutiveFailures: 3, OpenTimeout: 50 * time.Millisecond}),
		resilient.WithFallback(func(req *http.Request, err error) (*http.Response, error) {
			if errors.Is(err, resilient.ErrCircuitOpen) {
				return nil, fmt.Errorf("partner API unavailable, try later: %w", err)
			}
			return nil, err
		}),
	)
	defer client.CloseIdleConnections()

	call := func() {
		resp, err := client.Get(srv.URL)
		var open *resilient.CircuitOpenError
		switch {
		case errors.As(err, &open):
			fmt.Println("failed fast, breaker", open.State)
		case err != nil:
			fmt.Println(err)
		default:
			resp.Body.Close()
			fmt.Println(resp.StatusCode)
		}
	}
	for range 4 {
		call()
	}
	down.Store(false)
	time.Sleep(60 * time.Millisecond) // let OpenTimeout pass: the next call is a probe
	call()
	call()
	// Output:
	// 503
	// 503
	// 503
	// failed fast, breaker open
	// 200
	// 200
}

func ExampleWithIdempotencyKey() {
	var mu sync.Mutex
	var keys []string
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		if calls.Add(1) == 1 {
			http.Error(w, "hiccup", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, `{"charge":"ch_1"}`)
	}))
	defer srv.Close()

	client := resilient.New(
		resilient.WithRetry(resilient.RetryPolicy{InitialDelay: time.Millisecond}),
		resilient.WithIdempotencyKey(),
	)
	defer client.CloseIdleConnections()

	// The caller's business key: the same on every attempt, and on a retry
	// of the whole operation after a crash.
	ctx := resilient.ContextWithIdempotencyKey(context.Background(), "order-42-charge")
	req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL, strings.NewReader(`{"amount":4200}`))
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode, keys)
	// Output: 200 [order-42-charge order-42-charge]
}

func ExampleWithLogger() {
	srv := flakyServer(1)
	defer srv.Close()

	// Drop the time and duration so that the output is stable.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case slog.TimeKey, "duration", "retry_in":
				return slog.Attr{}
			case "url":
				return slog.String("url", strings.Replace(a.Value.String(), srv.URL, "http://partner", 1))
			}
			return a
		},
	}))
	client := resilient.New(resilient.WithRetry(resilient.RetryPolicy{}), resilient.WithLogger(logger))
	defer client.CloseIdleConnections()

	req, _ := http.NewRequest("GET", srv.URL+"/v1/cards?number=4242424242424242", nil)
	req.Header.Set("Authorization", "Bearer sk_live_secret")
	resp, err := client.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	// Output:
	// level=WARN msg="http attempt failed, retrying" method=GET url=http://partner/v1/cards query_params=number status=503 attempt=1 max_attempts=3 retry_reason=retry-after
	// level=DEBUG msg="http attempt" method=GET url=http://partner/v1/cards query_params=number status=200 attempt=2 max_attempts=3
	// level=DEBUG msg="http call" method=GET url=http://partner/v1/cards query_params=number status=200 attempt=2 max_attempts=3
}

// Count attempts per host for a metrics system, without the library
// importing it: an observer gets every attempt as a plain struct.
func ExampleWithObserver() {
	srv := flakyServer(2)
	defer srv.Close()

	var mu sync.Mutex
	attempts := map[string]int{}
	countAttempts := func(_ context.Context, e resilient.Event) {
		if e.Kind != resilient.EventAttempt {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		attempts[e.Request.URL.Hostname()]++ // a Prometheus counter would go here
	}

	client := resilient.New(resilient.Recommended(), resilient.WithObserver(countAttempts))
	defer client.CloseIdleConnections()
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(attempts)
	// Output: map[127.0.0.1:3]
}

func ExampleWithHedging() {
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if requests.Add(1) == 1 {
			<-r.Context().Done() // the first request is stuck; its hedge is not
			return
		}
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	// A fixed delay, for the example; the default adapts to each host's
	// 95th percentile of latency.
	client := resilient.New(resilient.Recommended(),
		resilient.WithHedging(resilient.HedgePolicy{Delay: 20 * time.Millisecond}))
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), requests.Load(), "requests")
	// Output: 200 ok 2 requests
}

func ExampleThrottledError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	defer srv.Close()

	client := resilient.New(resilient.Recommended())
	defer client.CloseIdleConnections()

	// 120 s is more than RetryPolicy.MaxRetryAfter: the 429 is handed
	// back at once, and it closes the host's throttle gate.
	resp, err := client.Get(srv.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.StatusCode)

	// The next call to that host is not sent into the throttle.
	_, err = client.Get(srv.URL)
	var te *resilient.ThrottledError
	fmt.Println(errors.Is(err, resilient.ErrThrottled), errors.As(err, &te) && te.RetryAfter > time.Minute)
	// Output:
	// 429
	// true true
}

// quota is a Limiter that lets n requests through, then refuses.
type quota struct{ left atomic.Int32 }

func (q *quota) Wait(_ context.Context, req *http.Request) error {
	if q.left.Add(-1) < 0 {
		return &resilient.ThrottledError{Key: resilient.HostKey(req)}
	}
	return nil
}

func ExampleWithLimiter() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }))
	defer srv.Close()

	q := new(quota)
	q.left.Store(1)
	client := resilient.New(resilient.Recommended(), resilient.WithLimiter(q))
	defer client.CloseIdleConnections()

	for range 2 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			fmt.Println("throttled:", errors.Is(err, resilient.ErrThrottled))
			continue
		}
		resp.Body.Close()
		fmt.Println(resp.StatusCode)
	}
	// Output:
	// 200
	// throttled: true
}

func ExampleWithFallbackOn() {
	// A host that is down answers 503, or refuses connections: with
	// WithFallbackOn both reach the one fallback.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	defer srv.Close()

	client := resilient.New(
		resilient.WithRetry(resilient.RetryPolicy{MaxAttempts: 2, InitialDelay: time.Millisecond}),
		resilient.WithFallback(resilient.CannedResponse(http.StatusOK,
			http.Header{"Content-Type": {"application/json"}}, []byte(`{"rates":[]}`))),
		resilient.WithFallbackOn(func(r *http.Response) bool { return r.StatusCode >= 500 }),
	)
	defer client.CloseIdleConnections()

	resp, err := client.Get(srv.URL + "/rates")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
	// Output: 200 {"rates":[]}
}

// Example is the quick start of README.md, line for line: only the partner's
// URL differs (https://api.partner.example/v1/charges there), because a local
// server stands in for the partner here. Keep the two in step.
func Example() {
	partner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "charged once for", r.Header.Get("Idempotency-Key"))
	}))
	defer partner.Close()

	client := resilient.New(resilient.Recommended(), resilient.WithLogger(slog.Default()))
	// 10 s per attempt, 30 s per call, 3 attempts with backoff, a breaker per host,
	// an Idempotency-Key on every POST and PATCH

	ctx := resilient.ContextWithIdempotencyKey(context.Background(), "order-42-charge") // same key on every attempt
	body := strings.NewReader(`{"order":"42","amount":1200,"currency":"EUR"}`)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, partner.URL+"/v1/charges", body)
	if err != nil {
		log.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		var re *resilient.RetryError // how many attempts were sent, and the last error
		if errors.As(err, &re) {
			log.Fatalf("charge failed after %d attempts: %v", re.Attempts, re.Err)
		}
		log.Fatal(err)
	}
	defer resp.Body.Close() // after retries the last response comes back whole, 503 or not
	fmt.Println(resp.Status)
	// Output: 200 OK
}

// sameProcess is a toy [resilient.Fleet] whose replicas are clients of
// one process: each closed gate and opened breaker is passed to the
// others. The package redisfleet has the real one, on Redis.
type sameProcess struct {
	mu      sync.Mutex
	members []*resilient.FleetMember
}

func (f *sameProcess) Join(m *resilient.FleetMember) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = append(f.members, m)
}

func (f *sameProcess) GateClosed(key string, until time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		m.CloseGate(key, until) // the replica that told it too: harmless here
	}
}

func (f *sameProcess) BreakerChanged(key string, _, to resilient.State, until time.Time) {
	if to != resilient.StateOpen {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.members {
		m.OpenBreaker(key, until)
	}
}

func (f *sameProcess) ProbePermit(context.Context, string, time.Duration) (bool, error) {
	return true, nil
}

func ExampleWithFleet() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "30")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	}))
	defer srv.Close()

	fleet := &sameProcess{}
	opts := []resilient.Option{
		resilient.WithRetry(resilient.RetryPolicy{MaxRetryAfter: time.Second}),
		resilient.WithFleet(fleet),
	}
	replicaA, replicaB := resilient.New(opts...), resilient.New(opts...)

	// A receives the 429 and its 30 s Retry-After; B, told by the fleet,
	// does not send its request at all.
	if resp, err := replicaA.Get(srv.URL); err == nil {
		resp.Body.Close()
		fmt.Println("A:", resp.StatusCode)
	}
	if _, err := replicaB.Get(srv.URL); err != nil {
		fmt.Println("B throttled:", errors.Is(err, resilient.ErrThrottled))
	}
	// Output:
	// A: 429
	// B throttled: true
}

func ExampleWithConcurrencyLimit() {
	arrived, release := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		arrived <- struct{}{}
		<-release
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	// One attempt in flight to the host, none waiting: a second call is
	// refused at once instead of piling onto a busy host.
	client := resilient.New(resilient.WithConcurrencyLimit(resilient.ConcurrencyPolicy{Limit: 1}))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := client.Get(srv.URL); err == nil {
			resp.Body.Close() // the body holds the slot until it is closed
		}
	}()
	<-arrived
	_, err := client.Get(srv.URL)
	var full *resilient.BulkheadError
	fmt.Println(errors.Is(err, resilient.ErrBulkheadFull), errors.As(err, &full) && full.Limit == 1)
	close(release)
	<-done
	// Output: true true
}

func ExampleWithRequestPolicy() {
	srv := flakyServer(1) // 503 to the first request, then 200
	defer srv.Close()
	client := resilient.New(resilient.WithRetry(resilient.RetryPolicy{InitialDelay: time.Millisecond}))

	// This PUT must not be sent twice: the 503 comes back as it is.
	ctx := resilient.WithRequestPolicy(context.Background(), resilient.RequestPolicy{NoRetry: true})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, srv.URL, strings.NewReader("v2"))
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		fmt.Println("PUT:", resp.StatusCode)
	}

	// A timeout the client does not have cannot be changed: an error, not
	// a silent default.
	ctx = resilient.WithRequestPolicy(context.Background(), resilient.RequestPolicy{TotalTimeout: time.Minute})
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	_, err := client.Do(req)
	fmt.Println(errors.Is(err, resilient.ErrRequestPolicy))
	// Output:
	// PUT: 503
	// true
}

func ExampleWithAdaptiveConcurrency() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	// The limit per host starts at 20 and follows the host's latency and
	// overload answers; a call over it is refused with ErrBulkheadFull,
	// which a caller can answer with a fallback or a 503 of its own.
	client := resilient.New(
		resilient.WithAdaptiveConcurrency(resilient.AdaptivePolicy{MaxLimit: 200}),
		resilient.WithAttemptTimeout(2*time.Second),
	)
	resp, err := client.Get(srv.URL)
	if errors.Is(err, resilient.ErrBulkheadFull) {
		fmt.Println("busy, try later")
		return
	}
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	fmt.Println(resp.StatusCode)
	// Output: 200
}

func ExampleBreakerControl() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()
	client := resilient.New(resilient.WithCircuitBreaker(resilient.BreakerPolicy{}))
	defer client.CloseIdleConnections()
	breakers := resilient.BreakersOf(client) // nil for a client without breakers
	key, _ := breakers.KeyOf(srv.URL)

	// Take the host out of rotation for a maintenance window: its calls
	// fail at once, without being sent.
	breakers.ForceOpen(key, 10*time.Minute)
	_, err := client.Get(srv.URL)
	var open *resilient.CircuitOpenError
	fmt.Println("forced open:", errors.As(err, &open) && open.Forced)

	// Back in rotation with a fresh breaker.
	breakers.Reset(key)
	resp, err := client.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	state, counts := breakers.State(key)
	fmt.Println(resp.StatusCode, state, counts.TotalSuccesses)
	// Output:
	// forced open: true
	// 200 closed 1
}

func ExampleBreakerPolicy_failureIf() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "a bug in this one handler", http.StatusInternalServerError)
	}))
	defer srv.Close()

	// A 500 is the application's bug, not the host's ill health: the
	// default rule, less that status, counts against the host.
	client := resilient.New(resilient.WithCircuitBreaker(resilient.BreakerPolicy{
		ConsecutiveFailures: 2,
		FailureIf: func(resp *http.Response, err error) bool {
			return resilient.IsHostFailure(resp, err) && (err != nil || resp.StatusCode != http.StatusInternalServerError)
		},
	}))
	defer client.CloseIdleConnections()
	for range 3 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ")
	}
	breakers := resilient.BreakersOf(client)
	key, _ := breakers.KeyOf(srv.URL)
	state, _ := breakers.State(key)
	fmt.Println(state)
	// Output: 500 500 500 closed
}

func ExampleBreakerPolicy_slowCall() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(50 * time.Millisecond) // a host that answers, but slowly
		fmt.Fprint(w, "ok")
	}))
	defer srv.Close()

	// Answers slower than 20 ms count as failures: two in a row open the
	// breaker, and the callers fail fast instead of queueing behind it.
	client := resilient.New(resilient.WithCircuitBreaker(resilient.BreakerPolicy{
		ConsecutiveFailures: 2,
		SlowCall:            20 * time.Millisecond,
	}))
	defer client.CloseIdleConnections()
	for range 2 {
		resp, err := client.Get(srv.URL)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ")
	}
	_, err := client.Get(srv.URL)
	fmt.Println(errors.Is(err, resilient.ErrCircuitOpen))
	// Output: 200 200 true
}
