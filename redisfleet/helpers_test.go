package redisfleet_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/redisfleet"
)

// replica is one replica of the service under test: its own Redis
// connection, with a client name of its own, its fleet seat and its client.
type replica struct {
	name   string
	rdb    *redis.Client
	fleet  *redisfleet.Fleet
	limit  *redisfleet.Limiter
	client *http.Client
	logs   *logCounter
	heard  chan string // "<kind> <key>" of each piece of news heard
}

// hear waits up to within for the replica to hear news of kind about key,
// and reports how long it took.
func (rep *replica) hear(t testing.TB, kind, key string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	timeout := time.NewTimer(within)
	defer timeout.Stop()
	for {
		select {
		case n := <-rep.heard:
			if n == kind+" "+key {
				return time.Since(start)
			}
		case <-timeout.C:
			t.Fatalf("%s did not hear %q about %s within %v", rep.name, kind, key, within)
		}
	}
}

// fleetRun is the replicas of one test under one key prefix.
type fleetRun struct {
	t      testing.TB
	addr   string
	prefix string
	admin  *redis.Client
}

// newRun returns a run on the test Redis under a fresh prefix, whose keys
// are deleted when t ends; it skips t without Redis (fails under CI=true).
func newRun(t testing.TB) *fleetRun {
	t.Helper()
	addr := testenv.Redis(t)
	admin := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	r := &fleetRun{t: t, addr: addr, prefix: testenv.Name("redisfleet"), admin: admin}
	t.Cleanup(func() {
		ctx := context.Background()
		iter := admin.Scan(ctx, 0, r.prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			admin.Unlink(ctx, iter.Val())
		}
		admin.Close()
	})
	return r
}

// replica starts a replica named i in the run: a fleet seat with quota q
// (none when q.Limit is 0) and a client with opts on top.
func (r *fleetRun) replica(i int, q redisfleet.Quota, lease time.Duration, opts ...resilient.Option) *replica {
	r.t.Helper()
	name := fmt.Sprintf("%s_r%d", r.prefix, i)
	rdb := redis.NewClient(&redis.Options{Addr: r.addr, ClientName: name, ContextTimeoutEnabled: true,
		DialTimeout: 200 * time.Millisecond})
	logs := &logCounter{}
	heard := make(chan string, 64)
	f := redisfleet.New(rdb, redisfleet.WithPrefix(r.prefix), redisfleet.WithName(name),
		redisfleet.WithLeasePeriod(lease), redisfleet.WithTimeout(150*time.Millisecond),
		redisfleet.WithLogger(slog.New(logs)), redisfleet.WithHeard(func(kind byte, key string) {
			select {
			case heard <- string(kind) + " " + key:
			default:
			}
		}))
	rep := &replica{name: name, rdb: rdb, fleet: f, logs: logs, heard: heard}
	select { // news published before would not reach it
	case <-f.Listened():
	case <-time.After(2 * time.Second):
		r.t.Fatalf("%s did not subscribe to the news", name)
	}
	if q.Limit > 0 {
		rep.limit = f.Limiter(q)
		opts = append([]resilient.Option{resilient.WithLimiter(rep.limit)}, opts...)
	}
	// Enough idle connections for every caller: with net/http's default of
	// two per host, the others dial anew for each request, and a dial that
	// stalls lets the requests pile up and reach the partner in a burst.
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConnsPerHost = 256
	rep.client = &http.Client{Transport: resilient.NewTransport(base, append(opts, resilient.WithFleet(f))...)}
	r.t.Cleanup(func() {
		f.Close()
		rep.client.CloseIdleConnections()
		rdb.Close()
	})
	return rep
}

// kill closes the Redis connections of the replica named name, and only
// those: CLIENT KILL by the test's own client name.
func (r *fleetRun) kill(name string) {
	r.t.Helper()
	ctx := context.Background()
	list, err := r.admin.ClientList(ctx).Result()
	if err != nil {
		r.t.Fatal(err)
	}
	for _, id := range clientIDs(list, name) {
		r.admin.Do(ctx, "CLIENT", "KILL", "ID", id)
	}
}

// partner is a loopback server with a quota of limit requests per second
// (a token bucket with a tenth of a second of burst): over it, it answers
// 429 (with retryAfter, when set). It counts what it answered.
type partner struct {
	*httptest.Server
	mu         sync.Mutex
	limit      float64
	tokens     float64
	last       time.Time
	ok, over   atomic.Int64
	retryAfter string
	status     atomic.Int32 // when set, the answer to every request
}

func newPartner(t testing.TB, limit float64) *partner {
	p := &partner{limit: limit, tokens: limit / 10}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *partner) serve(w http.ResponseWriter, _ *http.Request) {
	if s := p.status.Load(); s != 0 {
		w.WriteHeader(int(s))
		return
	}
	p.mu.Lock()
	now := time.Now()
	if !p.last.IsZero() {
		p.tokens = min(p.limit/10, p.tokens+now.Sub(p.last).Seconds()*p.limit)
	}
	p.last = now
	allowed := p.tokens >= 1
	if allowed {
		p.tokens--
	}
	p.mu.Unlock()
	if !allowed {
		p.over.Add(1)
		p.mu.Lock()
		ra := p.retryAfter
		p.mu.Unlock()
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	p.ok.Add(1)
}

// throttle makes p answer every request 429 with Retry-After ra.
func (p *partner) throttle(ra string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retryAfter, p.limit, p.tokens = ra, 0, 0
}

// setRetryAfter makes p's 429s carry Retry-After ra.
func (p *partner) setRetryAfter(ra string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.retryAfter = ra
}

// load runs callers goroutines per replica, each calling p in a loop until
// d has passed, and returns the 2xx and 429 answers received.
func load(ctx context.Context, reps []*replica, callers int, p *partner, d time.Duration) (ok, over int64) {
	st := loadStats(ctx, reps, callers, p, d)
	return st.ok, st.over
}

// stats counts what the callers of load got.
type stats struct{ ok, over, failed int64 }

// loadStats is load, with the errors counted too.
func loadStats(ctx context.Context, reps []*replica, callers int, p *partner, d time.Duration) stats {
	ctx, cancel := context.WithCancel(ctx) // no deadline: callers wait for their turn
	defer cancel()
	stop := time.AfterFunc(d, cancel)
	defer stop.Stop()
	var wg sync.WaitGroup
	var nOK, nOver, nFailed atomic.Int64
	for _, rep := range reps {
		for range callers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL, nil)
					resp, err := rep.client.Do(req)
					if err != nil {
						if ctx.Err() == nil {
							nFailed.Add(1)
							var te *resilient.ThrottledError
							if errors.As(err, &te) && te.RetryAfter > 0 {
								// a caller that is told to wait does, as a real one would
								select {
								case <-ctx.Done():
								case <-time.After(te.RetryAfter):
								}
							}
						}
						continue
					}
					resp.Body.Close()
					switch resp.StatusCode {
					case http.StatusOK:
						nOK.Add(1)
					case http.StatusTooManyRequests:
						nOver.Add(1)
					}
				}
			}()
		}
	}
	wg.Wait()
	return stats{nOK.Load(), nOver.Load(), nFailed.Load()}
}

// logCounter is a slog handler that counts records by level.
type logCounter struct {
	warn, info atomic.Int32
}

func (*logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	switch {
	case r.Level >= slog.LevelWarn:
		c.warn.Add(1)
	default:
		c.info.Add(1)
	}
	return nil
}
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCounter) WithGroup(string) slog.Handler      { return c }

// clientIDs returns the ids of the connections named name in the output
// of CLIENT LIST.
func clientIDs(list, name string) []string {
	var ids []string
	for _, line := range strings.Split(list, "\n") {
		var id string
		named := false
		for _, f := range strings.Fields(line) {
			switch {
			case strings.HasPrefix(f, "id="):
				id = f[3:]
			case f == "name="+name:
				named = true
			}
		}
		if named && id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

// granted returns the sum of the live grants of the quota key, per second,
// as Redis holds them.
func (r *fleetRun) granted(t testing.TB, key string) float64 {
	t.Helper()
	h, err := r.admin.HGetAll(context.Background(), r.prefix+":quota:default:"+key).Result()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, v := range h {
		var g, w float64
		var exp int64
		if _, err := fmt.Sscanf(v, "%g %g %d", &g, &w, &exp); err == nil && exp > time.Now().UnixMilli() {
			sum += g
		}
	}
	return sum
}
