package redisfleet

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The lease protocol. Each quota key is a Redis hash: one field per
// replica, "grant want expires" (per second, per second, Unix ms by
// Redis's clock). A replica renews its lease every quarter of the lease
// period with leaseScript, which drops the fields that expired (a dead
// replica's share), computes the max-min fair level of all wants (a
// replica that wants less than an equal share keeps its want, the rest
// share what is left equally) and grants the replica that level, but
// never more than the quota minus what the others hold now: a replica
// that grows waits for the others to shrink at their own renewals, so the
// grants never add up to more than the quota. A field lives three
// quarters of the lease period: a dead replica's share is free within
// that, and the others take it at their next renewal, within one lease
// period in all.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, cap, want, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local h = redis.call('HGETALL', KEYS[1])
local others, wants = 0, {}
for i = 1, #h, 2 do
  local g, w, exp = string.match(h[i + 1], '^(%S+) (%S+) (%S+)$')
  if not exp or tonumber(exp) <= now then
    redis.call('HDEL', KEYS[1], h[i])
  elseif h[i] ~= me then
    others = others + tonumber(g)
    wants[#wants + 1] = tonumber(w)
  end
end
wants[#wants + 1] = want
table.sort(wants)
local left, n, level = cap, #wants, cap
for i, w in ipairs(wants) do
  local fair = left / (n - i + 1)
  if w > fair then
    level = fair
    break
  end
  left = left - w
end
local grant = math.max(0, math.min(want, level, cap - others))
redis.call('HSET', KEYS[1], me, string.format('%.6f %.6f %d', grant, want, now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return {tostring(grant), n}
`)

// idleShares is how many lease periods a share may go unused before the
// replica gives it back and forgets it.
const idleShares = 10

// renewLoop renews the leases every quarter of the lease period, and
// sooner when a share is new or starved (renewSoon), but not more often
// than every sixteenth of it.
func (f *Fleet) renewLoop() {
	defer f.wg.Done()
	t := time.NewTicker(f.lease / 4)
	defer t.Stop()
	var (
		last  time.Time
		again <-chan time.Time // set while a share waits for its fair level
	)
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		case <-again:
		case <-f.kick:
			if gap := f.lease/16 - time.Since(last); gap > 0 && !f.fresh.Load() {
				select {
				case <-f.ctx.Done():
					return
				case <-time.After(gap):
				}
			}
		}
		last = time.Now()
		again = nil
		if f.renew() {
			again = time.After(min(f.lease/16, 50*time.Millisecond))
			f.send('s', 0, "-") // the others shrink at once rather than at their next renewal
		}
	}
}

// renewSoon asks the renewal loop for a renewal now.
func (f *Fleet) renewSoon() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// renewal is one share's lease request.
type renewal struct {
	l    *Limiter
	s    *share
	want float64
}

// renew renews the lease of every share in one round trip, and on
// failure moves the shares whose lease ran out to their fallback. It
// reports whether a share that wants more got less than an equal share:
// it grows as the others shrink, so it renews again soon.
func (f *Fleet) renew() (short bool) {
	f.fresh.Store(false)
	f.mu.Lock()
	limiters := append([]*Limiter(nil), f.limiters...)
	f.mu.Unlock()
	now := time.Now()
	var rs []renewal
	for _, l := range limiters {
		for _, s := range l.list() {
			calls, waited := s.b.usage()
			if calls > 0 {
				s.used = now
			} else if s.leased && now.Sub(s.used) > idleShares*f.lease {
				l.drop(s.key)
				f.release(l, s)
				continue
			}
			want := l.rate // a new share, or one that waited, wants it all
			if s.leased && !waited {
				want = min(l.rate, float64(calls)/(f.lease/4).Seconds()*1.25+1)
			}
			rs = append(rs, renewal{l: l, s: s, want: want})
		}
	}
	if len(rs) == 0 {
		return false
	}
	ttl := strconv.FormatInt((f.lease * 3 / 4).Milliseconds(), 10)
	cmds := make([]*redis.Cmd, len(rs)) // written by the operation, read only once it succeeded
	err := f.do(f.ctx, func(ctx context.Context) error {
		_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, r := range rs {
				cmds[i] = leaseScript.Eval(ctx, p, []string{r.l.redisKey(r.s.key)}, f.id,
					strconv.FormatFloat(r.l.rate, 'f', -1, 64), strconv.FormatFloat(r.want, 'f', 6, 64), ttl)
			}
			return nil
		})
		return err
	})
	for i, r := range rs {
		var grant float64
		var n int
		ok := err == nil
		if ok {
			grant, n, ok = result(cmds[i])
		}
		if !ok {
			if !r.s.leased || time.Now().After(r.s.expires) {
				r.s.b.setRate(r.l.fallback(r.s))
			}
			continue
		}
		r.s.leased, r.s.expires, r.s.members, r.s.granted = true, now.Add(f.lease*3/4), n, grant
		r.s.b.setRate(grant)
		if fair := r.l.rate / float64(n); grant < r.want && grant < fair*0.99 {
			short = true
		}
	}
	return short
}

// result reads the answer of a lease script: the grant and the number of
// replicas; false when it failed.
func result(cmd *redis.Cmd) (grant float64, n int, ok bool) {
	v, err := cmd.Slice()
	if err != nil || len(v) != 2 {
		return 0, 0, false
	}
	gs, _ := v[0].(string)
	cnt, _ := v[1].(int64)
	g, err := strconv.ParseFloat(gs, 64)
	if err != nil || cnt < 1 {
		return 0, 0, false
	}
	return g, int(cnt), true
}

// redisKey is the Redis hash of the quota key k.
func (l *Limiter) redisKey(k string) string {
	return l.f.key("quota", l.q.Name, k)
}

// release gives the share s back at once.
func (f *Fleet) release(l *Limiter, s *share) {
	_ = f.do(f.ctx, func(ctx context.Context) error {
		return f.rdb.HDel(ctx, l.redisKey(s.key), f.id).Err()
	})
}

// leave gives every share of this replica back, for Close.
func (f *Fleet) leave() error {
	f.mu.Lock()
	limiters := append([]*Limiter(nil), f.limiters...)
	f.mu.Unlock()
	return f.do(context.Background(), func(ctx context.Context) error {
		_, err := f.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, l := range limiters {
				for _, s := range l.list() {
					p.HDel(ctx, l.redisKey(s.key), f.id)
				}
			}
			p.Publish(ctx, f.key("news"), "l "+f.id+" 0 -") // the others grow at once
			return nil
		})
		return err
	})
}
