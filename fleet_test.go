package resilient

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// fakeFleet records what a client tells its fleet and answers probe
// permits as told.
type fakeFleet struct {
	mu       sync.Mutex
	members  []*FleetMember
	gates    []string
	changes  []string // "key from→to"
	permits  int
	deny     bool
	fail     bool
	blockFor time.Duration
}

func (f *fakeFleet) Join(m *FleetMember) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = append(f.members, m)
}

func (f *fakeFleet) GateClosed(key string, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gates = append(f.gates, key)
}

func (f *fakeFleet) BreakerChanged(key string, from, to State, _ time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, key+" "+from.String()+"→"+to.String())
}

func (f *fakeFleet) ProbePermit(ctx context.Context, _ string, _ time.Duration) (bool, error) {
	f.mu.Lock()
	f.permits++
	deny, fail, block := f.deny, f.fail, f.blockFor
	f.mu.Unlock()
	if block > 0 {
		select {
		case <-time.After(block):
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
	if fail {
		return false, errors.New("fleet down")
	}
	return !deny, nil
}

func (f *fakeFleet) member() *FleetMember {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[len(f.members)-1]
}

func TestFleetHearsOfClosedGatesAndBreakerChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{}
		var n atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if n.Add(1) == 1 {
				return reply(r, http.StatusTooManyRequests, "", "Retry-After", "1"), nil
			}
			return reply(r, http.StatusInternalServerError, ""), nil
		})
		c := &http.Client{Transport: NewTransport(base, WithFleet(f),
			WithRetry(RetryPolicy{MaxAttempts: 3}), WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 2}))}
		resp, err := c.Get("http://a.test/")
		if err == nil {
			resp.Body.Close()
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if len(f.gates) != 1 || f.gates[0] != "http://a.test" {
			t.Errorf("gates told = %q, want [http://a.test]", f.gates)
		}
		if len(f.changes) == 0 || f.changes[0] != "http://a.test closed→open" {
			t.Errorf("changes told = %q, want closed→open first", f.changes)
		}
	})
}

func TestFleetGateNewsHoldsCalls(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{}
		var sent atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			sent.Add(1)
			return reply(r, http.StatusOK, "ok"), nil
		})
		c := &http.Client{Transport: NewTransport(base, WithFleet(f), WithRetry(RetryPolicy{MaxRetryAfter: time.Second}))}
		f.member().CloseGate("http://a.test", time.Now().Add(10*time.Second))
		_, err := c.Get("http://a.test/")
		if !errors.Is(err, ErrThrottled) || sent.Load() != 0 {
			t.Fatalf("err = %v, sent %d; want ErrThrottled and nothing sent", err, sent.Load())
		}
		if resp, err := c.Get("http://b.test/"); err != nil {
			t.Fatalf("another host: %v", err)
		} else {
			resp.Body.Close()
		}
		if len(f.gates) != 0 {
			t.Errorf("news from the fleet was told back to it: %q", f.gates)
		}
	})
}

func TestFleetOpenedBreakerRefusesThenProbesOnce(t *testing.T) {
	tests := []struct {
		name       string
		deny, fail bool
		block      time.Duration
		wantProbe  bool
	}{
		{name: "permitted", wantProbe: true},
		{name: "denied", deny: true},
		{name: "fleet fails: local decides", fail: true, wantProbe: true},
		{name: "fleet slow: local decides", block: time.Hour, wantProbe: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeFleet{deny: tt.deny, fail: tt.fail, blockFor: tt.block}
				var sent atomic.Int32
				base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
					sent.Add(1)
					return reply(r, http.StatusOK, "ok"), nil
				})
				c := &http.Client{Transport: NewTransport(base, WithFleet(f), WithCircuitBreaker(BreakerPolicy{OpenTimeout: time.Minute}))}
				f.member().OpenBreaker("http://a.test", time.Now().Add(5*time.Second))

				_, err := c.Get("http://a.test/")
				var open *CircuitOpenError
				if !errors.As(err, &open) || open.State != StateOpen || open.RetryAfter != 5*time.Second {
					t.Fatalf("while open: err = %v, want open for 5s", err)
				}
				time.Sleep(5 * time.Second)
				resp, err := c.Get("http://a.test/")
				if tt.wantProbe {
					if err != nil {
						t.Fatalf("probe: %v", err)
					}
					resp.Body.Close()
					if resp, err = c.Get("http://a.test/"); err != nil {
						t.Fatalf("after the probe: %v", err)
					}
					resp.Body.Close()
				} else if !errors.As(err, &open) || open.State != StateHalfOpen {
					t.Fatalf("denied probe: err = %v, want half-open refusal", err)
				}
				want := int32(0)
				if tt.wantProbe {
					want = 2
				}
				if sent.Load() != want || f.permits != 1 {
					t.Errorf("sent %d, permits asked %d; want %d and 1", sent.Load(), f.permits, want)
				}
			})
		})
	}
}

func TestFleetFailedProbeReopensAndTells(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{}
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return reply(r, http.StatusBadGateway, ""), nil
		})
		c := &http.Client{Transport: NewTransport(base, WithFleet(f), WithCircuitBreaker(BreakerPolicy{OpenTimeout: time.Minute}))}
		f.member().OpenBreaker("http://a.test", time.Now().Add(time.Second))
		time.Sleep(time.Second)
		resp, err := c.Get("http://a.test/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		_, err = c.Get("http://a.test/")
		var open *CircuitOpenError
		if !errors.As(err, &open) || open.RetryAfter != time.Minute {
			t.Fatalf("after a failed probe: err = %v, want open for a minute", err)
		}
		if len(f.changes) != 1 || f.changes[0] != "http://a.test half-open→open" {
			t.Errorf("changes told = %q", f.changes)
		}
	})
}

func BenchmarkFleetBreakerClosed(b *testing.B) {
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) { return okResponse(r), nil })
	rt := NewTransport(base, WithFleet(&fakeFleet{}), WithCircuitBreaker(BreakerPolicy{}))
	req, _ := http.NewRequest(http.MethodGet, "http://a.test/", nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}

// okResponse is a shared 200 with no body, so that the benchmark measures
// the layers only.
func okResponse(r *http.Request) *http.Response {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r, Header: http.Header{}}
}

func TestFleetPermitAskedBeforeOwnHalfOpenProbe(t *testing.T) {
	for _, deny := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeFleet{deny: deny}
			var sent atomic.Int32
			base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
				if sent.Add(1) == 1 {
					return reply(r, http.StatusBadGateway, ""), nil
				}
				return reply(r, http.StatusOK, "ok"), nil
			})
			c := &http.Client{Transport: NewTransport(base, WithFleet(f),
				WithCircuitBreaker(BreakerPolicy{ConsecutiveFailures: 1, OpenTimeout: time.Second}))}
			resp, err := c.Get("http://a.test/") // opens the breaker
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			time.Sleep(time.Second + time.Millisecond) // gobreaker's open timeout ends after its instant
			resp, err = c.Get("http://a.test/")
			switch {
			case deny:
				var open *CircuitOpenError
				if !errors.As(err, &open) || open.State != StateHalfOpen || sent.Load() != 1 {
					t.Fatalf("denied: err = %v, sent %d; want a half-open refusal and no probe", err, sent.Load())
				}
			case err != nil:
				t.Fatalf("permitted probe: %v", err)
			default:
				resp.Body.Close()
				if sent.Load() != 2 || f.changes[len(f.changes)-1] != "http://a.test half-open→closed" {
					t.Fatalf("sent %d, changes %q; want the probe sent and the breaker closed", sent.Load(), f.changes)
				}
			}
			if f.permits != 1 {
				t.Errorf("permits asked %d, want 1", f.permits)
			}
		})
	}
}

func TestFleetProbeThatPanicsLetsTheNextProbeGo(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeFleet{}
		var sent atomic.Int32
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if sent.Add(1) == 1 {
				panic("base transport bug")
			}
			return reply(r, http.StatusOK, "ok"), nil
		})
		c := &http.Client{Transport: NewTransport(base, WithFleet(f), WithCircuitBreaker(BreakerPolicy{OpenTimeout: time.Minute}))}
		f.member().OpenBreaker("http://a.test", time.Now().Add(time.Second))
		time.Sleep(time.Second)
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("the probe's panic did not reach the caller")
				}
			}() // as http.Server recovers a handler's panic
			_, _ = c.Transport.RoundTrip(newRequest("GET", "http://a.test/", nil))
		}()
		time.Sleep(time.Minute)
		resp, err := c.Get("http://a.test/")
		if err != nil {
			t.Fatalf("a probe after the one that panicked: %v", err)
		}
		resp.Body.Close()
	})
}
