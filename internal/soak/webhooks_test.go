package soak_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"
)

// The senders of the webhook part.
const (
	eventEvery  = 10 * time.Millisecond   // a new event, to the streams in turn
	maxPending  = 200                     // events not yet answered 200, past which no new one is made
	lateAfter   = hookLease + hookLease/6 // the late redelivery after an event's first 200
	drainLimit  = 30 * time.Second        // for every event to get its 200 after the run
	maxListings = 10
)

// hooks is the running webhook part.
type hooks struct {
	app, redisName string // the names of the receivers' connections
	admin          *pgxpool.Pool
	adminRedis     *redis.Client
	fx             string // the effects of the transactional stream
	urls           [streams][]string
	receivers      []string
	client         *http.Client
	end            time.Time // of the run, when the senders stop making events

	calls, txFailed       atomic.Int64
	deliveries, sendErrs  atomic.Int64
	killedPG, killedRedis atomic.Int64
	lateDelivered         atomic.Int64
	pendingN, held        atomic.Int64 // events not answered 200 yet; ticks without a new event for that

	mu               sync.Mutex
	again, lateAgain int          // process calls after a 200 for the event, and after the late redelivery began
	failed           [streams]int // process calls failed on purpose
	events           map[string]*event
	effects          map[string]int       // of the lease and redis streams
	statuses         [streams]map[int]int // answers to deliveries, per stream
	storeErrs        map[string]int
	errSamples       map[string]string // one error text per operation
	unexpected       []string
}

// event is what the senders know of one event.
type event struct {
	stream   int
	done     bool     // a delivery was answered 200
	late     bool     // the late redelivery started
	lateDone bool     // and was answered 200
	status   int      // the latest answer to a delivery, 0 for none
	reported []string // the errors the handlers reported for it
}

// runWebhooks sends events to the receivers for run while the killer cuts
// their connections every killEvery, lets every delivery chain finish, and
// checks that each event's effect was applied exactly once.
func runWebhooks(t *testing.T, run time.Duration, dsn, redisAddr string) *webhookFigures {
	h := &hooks{events: map[string]*event{}, effects: map[string]int{},
		storeErrs: map[string]int{}, errSamples: map[string]string{}}
	for s := range h.statuses {
		h.statuses[s] = map[int]int{}
	}
	h.startReceivers(t, dsn, redisAddr)
	start := time.Now()
	h.end = start.Add(run)
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(run+drainLimit))
	defer cancel()

	var killer, senders sync.WaitGroup
	killer.Go(func() { h.kill(ctx, t, start.Add(run)) })
	tick := time.NewTicker(eventEvery)
	for n := 0; time.Since(start) < run; {
		<-tick.C
		if h.pendingN.Load() >= maxPending {
			h.held.Add(1)
			continue
		}
		h.pendingN.Add(1)
		id, ev := fmt.Sprintf("evt_%d", n), &event{stream: n % streams}
		n++
		h.mu.Lock()
		h.events[id] = ev
		h.mu.Unlock()
		// Two deliveries at once, and a third after a sender's timeout.
		senders.Go(func() { h.chain(ctx, &senders, id, ev, false) })
		senders.Go(func() { h.chain(ctx, &senders, id, ev, false) })
		senders.Go(func() {
			if sleep(ctx, time.Duration(rand.N(300))*time.Millisecond) {
				h.chain(ctx, &senders, id, ev, false)
			}
		})
	}
	tick.Stop()
	killer.Wait()
	senders.Wait()
	drain := time.Since(start) - run
	if ctx.Err() != nil {
		t.Errorf("events still waiting for a 200 %v after the run: %s", drainLimit, h.pending())
	}
	f := h.figures(t)
	f.drain = drain
	if f.duplicated > 0 || f.lost > 0 {
		t.Errorf("%d of %d events applied more than once, %d never:\n%s", f.duplicated, f.events, f.lost, strings.Join(f.listing, "\n"))
	}
	if len(h.unexpected) > 0 {
		t.Errorf("deliveries answered other than 200, 409, 500 or 503: %s", strings.Join(h.unexpected, "; "))
	}
	if run >= 2*killEvery && (f.killedPG == 0 || f.killedRedis == 0) {
		t.Errorf("killed %d PostgreSQL and %d Redis connections: the soak proves less than it says", f.killedPG, f.killedRedis)
	}
	return f
}
