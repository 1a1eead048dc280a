// Package bench compares resilient with peer libraries, each configured as
// alike as possible: 3 attempts with exponential backoff, a 10 s attempt
// timeout and, where the library has one, a circuit breaker that opens
// after 5 failures for 30 s. It is a module of its own, so that the
// library's go.mod never lists the peers.
package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"time"

	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/timeout"
	"github.com/go-resty/resty/v2"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/resilient-go/resilient"
)

// Config is what every stack gets: its backoff delays, and whether to
// leave the circuit breaker out (scenario 4 measures retries alone).
type Config struct {
	Initial, Max time.Duration
	NoBreaker    bool
}

// Default is the configuration of the overhead scenarios.
var Default = Config{Initial: 100 * time.Millisecond, Max: 10 * time.Second}

// Doer sends one request and returns its status; body, when not nil, is
// sent and must be replayable.
type Doer func(ctx context.Context, method, url string, body []byte) (int, error)

// Stack is one library's client over a base transport.
type Stack struct {
	Name    string
	Breaker bool // whether the stack has a circuit breaker
	New     func(base http.RoundTripper, c Config) Doer
}

// Stacks are the contenders; "bare" is the base transport alone.
var Stacks = []Stack{
	{Name: "bare", New: func(base http.RoundTripper, _ Config) Doer { return clientDoer(&http.Client{Transport: base}) }},
	{Name: "resilient", Breaker: true, New: newResilient},
	{Name: "go-retryablehttp", New: newRetryablehttp},
	{Name: "failsafe-go", Breaker: true, New: newFailsafe},
	{Name: "resty", New: newResty},
}

func newResilient(base http.RoundTripper, c Config) Doer {
	opts := []resilient.Option{
		resilient.WithAttemptTimeout(10 * time.Second),
		resilient.WithRetry(resilient.RetryPolicy{MaxAttempts: 3, InitialDelay: c.Initial, MaxDelay: c.Max}),
	}
	if !c.NoBreaker {
		opts = append(opts, resilient.WithCircuitBreaker(resilient.BreakerPolicy{ConsecutiveFailures: 5, OpenTimeout: 30 * time.Second}))
	}
	return clientDoer(&http.Client{Transport: resilient.NewTransport(base, opts...)})
}

func newRetryablehttp(base http.RoundTripper, b Config) Doer {
	c := retryablehttp.NewClient()
	c.Logger = nil
	c.HTTPClient = &http.Client{Transport: base, Timeout: 10 * time.Second}
	c.RetryMax = 2
	c.RetryWaitMin, c.RetryWaitMax = b.Initial, b.Max
	c.ErrorHandler = retryablehttp.PassthroughErrorHandler
	return clientDoer(c.StandardClient())
}

func newFailsafe(base http.RoundTripper, c Config) Doer {
	policies := []failsafe.Policy[*http.Response]{
		failsafehttp.NewRetryPolicyBuilder().WithMaxRetries(2).WithBackoff(c.Initial, c.Max).ReturnLastFailure().Build(),
	}
	if !c.NoBreaker {
		policies = append(policies, circuitbreaker.NewBuilder[*http.Response]().
			HandleIf(func(r *http.Response, err error) bool { return err != nil || r.StatusCode >= 500 }).
			WithFailureThreshold(5).WithDelay(30*time.Second).Build())
	}
	policies = append(policies, timeout.New[*http.Response](10*time.Second))
	return clientDoer(&http.Client{Transport: failsafehttp.NewRoundTripper(base, policies...)})
}

func newResty(base http.RoundTripper, b Config) Doer {
	c := resty.New().SetTransport(base).SetTimeout(10 * time.Second).
		SetRetryCount(2).SetRetryWaitTime(b.Initial).SetRetryMaxWaitTime(b.Max).
		AddRetryCondition(func(r *resty.Response, err error) bool {
			return err != nil || r.StatusCode() >= 500 || r.StatusCode() == http.StatusTooManyRequests
		})
	return func(ctx context.Context, method, url string, body []byte) (int, error) {
		req := c.R().SetContext(ctx)
		if body != nil {
			req.SetBody(body)
		}
		resp, err := req.Execute(method, url)
		if err != nil {
			return 0, err
		}
		return resp.StatusCode(), nil
	}
}

// clientDoer sends through an *http.Client; a body goes in a bytes.Reader,
// so the request has GetBody.
func clientDoer(c *http.Client) Doer {
	return func(ctx context.Context, method, url string, body []byte) (int, error) {
		var r io.Reader
		if body != nil {
			r = bytes.NewReader(body)
		}
		req, err := http.NewRequestWithContext(ctx, method, url, r)
		if err != nil {
			return 0, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, nil
	}
}
