// Command replicas shows four replicas of a service sharing one partner's
// quota of 100 requests/s through Redis with redisfleet: each replica runs
// 32 callers as fast as they can, yet the partner sees 100 requests/s and
// no 429. After two seconds one replica stops and the other three take its
// share. It prints a table and exits.
//
//	go run ./examples/replicas            # Redis on 127.0.0.1:6379
//	REDIS_ADDR=host:6379 go run ./examples/replicas
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/redisfleet"
)

const (
	quota    = 100 // requests/s the partner allows
	replicas = 4
	callers  = 32 // per replica
	phase    = 2 * time.Second
)

func main() {
	addr := os.Getenv("REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		fmt.Println(`no Redis at ` + addr + `; start one with: redis-server --daemonize yes --port 6379 --save "" --appendonly no`)
		return
	} else {
		c.Close()
	}

	partner := newPartner(quota)
	defer partner.Close()
	prefix := fmt.Sprintf("replicas-example:%d", time.Now().UnixNano())

	var reps []*replica
	for i := range replicas {
		reps = append(reps, start(addr, prefix, i))
	}
	defer func() {
		for _, r := range reps {
			r.stop()
		}
	}()

	fmt.Printf("%-22s %-8s %8s %8s\n", "phase", "replica", "2xx/s", "429/s")
	run("4 replicas", reps, partner)
	reps[3].stop() // gives its share back at once
	run("3 replicas (r3 left)", reps[:3], partner)
}

// replica is one replica: its own Redis client, fleet seat and HTTP client.
type replica struct {
	name   string
	rdb    *redis.Client
	fleet  *redisfleet.Fleet
	client *http.Client
	ok     atomic.Int64
	over   atomic.Int64
	once   sync.Once
}

func start(addr, prefix string, i int) *replica {
	r := &replica{name: fmt.Sprintf("r%d", i)}
	r.rdb = redis.NewClient(&redis.Options{Addr: addr, ClientName: prefix + "-" + r.name, ContextTimeoutEnabled: true})
	r.fleet = redisfleet.New(r.rdb, redisfleet.WithPrefix(prefix), redisfleet.WithName(r.name))
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = callers
	r.client = &http.Client{Transport: resilient.NewTransport(base,
		resilient.WithRetry(resilient.RetryPolicy{}),
		resilient.WithLimiter(r.fleet.Limiter(redisfleet.Quota{Limit: quota})),
		resilient.WithFleet(r.fleet))}
	return r
}

func (r *replica) stop() {
	r.once.Do(func() {
		r.fleet.Close()
		r.client.CloseIdleConnections()
		r.rdb.Close()
	})
}

// run lets the callers of reps call the partner for one phase and prints
// what each replica and the partner saw.
func run(name string, reps []*replica, p *partner) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(phase, cancel)
	okBefore, overBefore := p.ok.Load(), p.over.Load()
	var wg sync.WaitGroup
	for _, r := range reps {
		r.ok.Store(0)
		r.over.Store(0)
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
					resp, err := r.client.Do(req)
					if err != nil {
						continue
					}
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						r.ok.Add(1)
					} else {
						r.over.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	secs := phase.Seconds()
	for _, r := range reps {
		fmt.Printf("%-22s %-8s %8.1f %8.1f\n", name, r.name, float64(r.ok.Load())/secs, float64(r.over.Load())/secs)
	}
	fmt.Printf("%-22s %-8s %8.1f %8.1f\n", name, "partner", float64(p.ok.Load()-okBefore)/secs, float64(p.over.Load()-overBefore)/secs)
}

// partner allows quota requests/s (a token bucket with a tenth of a second
// of burst) and answers 429 with Retry-After: 1 over it.
type partner struct {
	*httptest.Server
	mu       sync.Mutex
	tokens   float64
	last     time.Time
	ok, over atomic.Int64
}

func newPartner(limit float64) *partner {
	p := &partner{tokens: limit / 10, last: time.Now()}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		p.mu.Lock()
		now := time.Now()
		p.tokens = min(limit/10, p.tokens+now.Sub(p.last).Seconds()*limit)
		p.last = now
		allowed := p.tokens >= 1
		if allowed {
			p.tokens--
		}
		p.mu.Unlock()
		if !allowed {
			p.over.Add(1)
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		p.ok.Add(1)
	}))
	return p
}
