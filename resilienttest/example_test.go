package resilienttest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/resilienttest"
)

// A POST meets a 503, then a dropped connection, then goes through; the
// recorder shows that every attempt carried the same idempotency key and
// the same body.
//
// Example functions cannot run under testing/synctest, so this one keeps
// its waits short instead: Retry-After: 0 and a 1 ms backoff. In a test,
// run the same code inside synctest.Test and keep the real delays (see the
// package documentation).
func Example() {
	faults := resilienttest.Script(
		resilienttest.Status(503, "Retry-After", "0"), // attempt 1
		resilienttest.Reset(),                         // attempt 2
	) // attempt 3 and later: 200 OK
	var rec resilienttest.Recorder
	client := &http.Client{Transport: resilient.NewTransport(rec.Transport(faults),
		resilient.Recommended(),
		resilient.WithRetry(resilient.RetryPolicy{InitialDelay: time.Millisecond}),
	)}

	resp, err := client.Post("http://payments.test/v1/charges", "application/json", strings.NewReader(`{"amount":4200}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println(resp.Status)

	attempts := rec.Attempts()
	for i, a := range attempts {
		fmt.Printf("attempt %d: %s %s %s, same key: %t\n", i+1, a.Method, a.URL, a.Body,
			a.IdempotencyKey() != "" && a.IdempotencyKey() == attempts[0].IdempotencyKey())
	}
	// Output:
	// 200 OK
	// attempt 1: POST http://payments.test/v1/charges {"amount":4200}, same key: true
	// attempt 2: POST http://payments.test/v1/charges {"amount":4200}, same key: true
	// attempt 3: POST http://payments.test/v1/charges {"amount":4200}, same key: true
}

// A seeded rate: the same seed gives the same faults on every run, so a
// failure can be replayed.
func ExampleRate() {
	faults := resilienttest.Rate(42,
		resilienttest.Weighted(0.3, resilienttest.Status(503)),
		resilienttest.Weighted(0.1, resilienttest.Reset()),
	)
	for range 10 {
		resp, err := faults.RoundTrip(httptest.NewRequest(http.MethodGet, "http://api.test/", nil))
		if err != nil {
			fmt.Print("reset ")
			continue
		}
		resp.Body.Close()
		fmt.Print(resp.StatusCode, " ")
	}
	fmt.Println()
	// Output:
	// 200 503 200 reset 200 200 200 200 200 503
}

// Faults as middleware of an httptest server, for behaviour that only a
// real connection shows, with the client of resilient.New.
func ExampleFaults_Handler() {
	faults := resilienttest.Script(resilienttest.Status(http.StatusTooManyRequests, "Retry-After", "0"))
	api := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") })
	srv := httptest.NewServer(faults.Handler(api))
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
	fmt.Println(resp.StatusCode, string(body), "after", faults.Count(), "attempts")
	// Output: 200 hello after 2 attempts
}

// InMemory puts a fake API of your own under the faults, without a socket.
func ExampleInMemory() {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"path":%q}`, r.URL.Path)
	})
	faults := resilienttest.Script(resilienttest.Truncate(5))
	client := &http.Client{Transport: faults.Transport(resilienttest.InMemory(api))}

	for range 2 {
		resp, err := client.Get("http://api.test/v1/orders")
		if err != nil {
			fmt.Println(err)
			return
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("%s (err: %v)\n", body, err)
	}
	// Output:
	// {"pat (err: unexpected EOF)
	// {"path":"/v1/orders"} (err: <nil>)
}
