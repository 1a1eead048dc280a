package redisfleet

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient"
)

// News travels on one pub/sub channel, one message per event:
//
//	g <replica> <ms> <key>   the gate of key closed for ms milliseconds
//	o <replica> <ms> <key>   the breaker of key opened; it probes in ms
//	c <replica> 0 <key>      the breaker of key closed again
//	s <replica> 0 -          a share is short of its fair level: renew now
//	l <replica> 0 -          the replica left: renew now
//
// Durations, not instants, so that the replicas' clocks need not agree.
// A replica ignores its own news.

var _ resilient.Fleet = (*Fleet)(nil)

// maxProbeNews bounds the breaker keys whose news a replica keeps.
const maxProbeNews = 10_000

// probeNews is what a replica knows of the probes of one breaker key.
type probeNews struct {
	closed      bool      // the last news of the key: its breaker closed
	deniedUntil time.Time // another replica holds the probe permit until then
}

// Join implements [resilient.Fleet]: the fleet's news acts on m.
func (f *Fleet) Join(m *resilient.FleetMember) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.members = append(f.members, m)
}

// GateClosed implements [resilient.Fleet]: it publishes the closure to
// the other replicas, without waiting.
func (f *Fleet) GateClosed(key string, until time.Time) {
	f.send('g', time.Until(until), key)
}

// BreakerChanged implements [resilient.Fleet]: an opened breaker is
// published to the other replicas, and so is a closed one, without
// waiting.
func (f *Fleet) BreakerChanged(key string, _, to resilient.State, until time.Time) {
	switch to {
	case resilient.StateOpen:
		f.note(key, false)
		f.send('o', time.Until(until), key)
	case resilient.StateClosed:
		f.note(key, true)
		f.send('c', 0, key)
	}
}

// ProbePermit implements [resilient.Fleet]: a breaker that the fleet saw
// close again may probe; otherwise one replica per interval gets the
// permit, a Redis key set with NX for interval. Its error (Redis down or
// slow) lets the client probe on its own.
func (f *Fleet) ProbePermit(ctx context.Context, key string, interval time.Duration) (bool, error) {
	f.mu.Lock()
	n := f.probes[key]
	f.mu.Unlock()
	if n.closed {
		return true, nil
	}
	if time.Now().Before(n.deniedUntil) {
		return false, nil
	}
	var (
		got  bool
		pttl time.Duration
	)
	err := f.do(ctx, func(ctx context.Context) error {
		k := f.key("probe", key)
		var set *redis.BoolCmd
		var ttl *redis.DurationCmd
		_, err := f.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			set = p.SetNX(ctx, k, f.id, max(interval, time.Millisecond))
			ttl = p.PTTL(ctx, k)
			return nil
		})
		if err == nil {
			got, pttl = set.Val(), ttl.Val()
		}
		return err
	})
	if err != nil {
		return false, err
	}
	if !got {
		f.mu.Lock()
		n = f.probes[key]
		n.deniedUntil = time.Now().Add(max(pttl, 0))
		f.probes[key] = n
		f.mu.Unlock()
	}
	return got, nil
}

// note records the last news of a breaker key: closed or opened.
func (f *Fleet) note(key string, closed bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.probes) >= maxProbeNews {
		clear(f.probes) // forgetting costs one Redis round trip per probe
	}
	if closed {
		f.probes[key] = probeNews{closed: true}
		return
	}
	delete(f.probes, key)
}

// send queues one piece of news; when the queue is full it is dropped.
func (f *Fleet) send(kind byte, d time.Duration, key string) {
	if f.rdb == nil || f.closed.Load() {
		return
	}
	msg := string(kind) + " " + f.id + " " + strconv.FormatInt(max(d.Milliseconds(), 0), 10) + " " + key
	select {
	case f.out <- msg:
	default:
	}
}

// publishLoop publishes the queued news, each under the fleet's timeout,
// sent again once when it fails before that (a connection that Redis
// closed meanwhile).
func (f *Fleet) publishLoop() {
	defer f.wg.Done()
	ch := f.key("news")
	for {
		select {
		case <-f.ctx.Done():
			return
		case msg := <-f.out:
			_ = f.do(f.ctx, func(ctx context.Context) error {
				err := f.rdb.Publish(ctx, ch, msg).Err()
				if err != nil && ctx.Err() == nil { // once more, on a fresh connection
					err = f.rdb.Publish(ctx, ch, msg).Err()
				}
				return err
			})
		}
	}
}

// subscribeLoop hears the others' news and acts on the members. go-redis
// subscribes again by itself after a lost connection.
func (f *Fleet) subscribeLoop() {
	defer f.wg.Done()
	ps := f.rdb.Subscribe(f.ctx, f.key("news"))
	close(f.listened)
	// A receive honours no cancellation: closing ps ends it.
	stop := context.AfterFunc(f.ctx, func() { ps.Close() })
	defer func() {
		if stop() {
			ps.Close()
		}
	}()
	for {
		msg, err := ps.ReceiveMessage(f.ctx)
		if f.ctx.Err() != nil {
			return
		}
		if err != nil {
			f.report(err)
			select { // go-redis redials on the next receive
			case <-f.ctx.Done():
				return
			case <-time.After(f.timeout):
			}
			continue
		}
		f.hear(msg.Payload)
	}
}

// hear acts on one piece of news from another replica.
func (f *Fleet) hear(payload string) {
	parts := strings.SplitN(payload, " ", 4)
	if len(parts) != 4 || parts[1] == f.id || len(parts[0]) != 1 {
		return
	}
	ms, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return
	}
	key, until := parts[3], time.Now().Add(time.Duration(ms)*time.Millisecond)
	f.mu.Lock()
	members := append([]*resilient.FleetMember(nil), f.members...)
	f.mu.Unlock()
	switch parts[0][0] {
	case 'g':
		for _, m := range members {
			m.CloseGate(key, until)
		}
	case 'o':
		f.note(key, false)
		for _, m := range members {
			m.OpenBreaker(key, until)
		}
	case 'c':
		f.note(key, true)
	case 's', 'l':
		f.fresh.Store(true) // no gap: the fleet converges in one round trip
		f.renewSoon()
	}
	if f.heard != nil {
		f.heard(parts[0][0], key)
	}
}
