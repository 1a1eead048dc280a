package redisstore_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

func TestMillis(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{
		{1, 1},
		{time.Microsecond, 1},
		{time.Millisecond - 1, 1},
		{time.Millisecond, 1},
		{time.Millisecond + 1, 2},
		{1500 * time.Microsecond, 2},
		{300 * time.Millisecond, 300},
		{72 * time.Hour, 259_200_000},
		{math.MaxInt64, math.MaxInt64/int64(time.Millisecond) + 1},
	} {
		if got := redisstore.Millis(tc.d); got != tc.want {
			t.Errorf("millis(%v) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestBadInput: no client, no positive duration, no token: a clear error,
// no panic, no round trip.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	held := webhook.Claim{Key: "k", Token: "t", Result: webhook.Claimed}
	noClient := []*redisstore.Store{nil, redisstore.New(nil), redisstore.New((*redis.Client)(nil)),
		redisstore.New((*redis.ClusterClient)(nil)), redisstore.New((*redis.Ring)(nil))}
	for i, s := range noClient {
		_, err := s.Claim(ctx, "k", time.Second)
		errs := []error{err, s.Extend(ctx, held, time.Second), s.Complete(ctx, held, time.Hour), s.Release(ctx, held)}
		for j, err := range errs {
			if !errors.Is(err, redisstore.ErrNilClient) {
				t.Errorf("store %d, call %d: err = %v, want ErrNilClient", i, j, err)
			}
		}
	}

	s, _, _ := newStore(t)
	for _, d := range []time.Duration{0, -1, -time.Hour, math.MinInt64} {
		c, err := s.Claim(ctx, "k", d)
		if !errors.Is(err, redisstore.ErrInvalidDuration) || c.Result != 0 {
			t.Errorf("Claim(lease %v) = %+v, %v; want ErrInvalidDuration", d, c, err)
		}
		if err := s.Extend(ctx, held, d); !errors.Is(err, redisstore.ErrInvalidDuration) {
			t.Errorf("Extend(lease %v) = %v; want ErrInvalidDuration", d, err)
		}
		if err := s.Complete(ctx, held, d); !errors.Is(err, redisstore.ErrInvalidDuration) {
			t.Errorf("Complete(keep %v) = %v; want ErrInvalidDuration", d, err)
		}
	}

	for _, c := range []webhook.Claim{
		{},
		{Key: "k"},
		{Key: "k", Result: webhook.Claimed},
		{Key: "k", Token: "t", Result: webhook.InProgress},
		{Key: "k", Token: "t", Result: webhook.Done},
		held, // never claimed in Redis
	} {
		for name, err := range map[string]error{
			"Extend":   s.Extend(ctx, c, time.Second),
			"Complete": s.Complete(ctx, c, time.Hour),
			"Release":  s.Release(ctx, c),
		} {
			if !errors.Is(err, webhook.ErrLeaseLost) {
				t.Errorf("%s(%+v) = %v, want ErrLeaseLost", name, c, err)
			}
		}
	}
}

// TestKeyValues pins what Redis holds, for operators who look: the prefix,
// "c:<token>" with the lease while claimed, "d:<nonce>" with keep once done.
func TestKeyValues(t *testing.T) {
	ctx := context.Background()
	s, rc, prefix := newStore(t)
	c, err := s.Claim(ctx, "evt", time.Hour)
	if err != nil || c.Result != webhook.Claimed || c.Token == "" || c.Key != "evt" {
		t.Fatalf("Claim = %+v, %v", c, err)
	}
	if v := rc.Get(ctx, prefix+"evt").Val(); v != "c:"+c.Token {
		t.Errorf("claimed value = %q, want %q", v, "c:"+c.Token)
	}
	if ttl := rc.PTTL(ctx, prefix+"evt").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("claimed PTTL = %v, want about 1h", ttl)
	}
	if err := s.Complete(ctx, c, 72*time.Hour); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if v := rc.Get(ctx, prefix+"evt").Val(); !strings.HasPrefix(v, "d:") || strings.Contains(v, c.Token) {
		t.Errorf("done value = %q, want d:<nonce>", v)
	}
	if ttl := rc.PTTL(ctx, prefix+"evt").Val(); ttl <= 71*time.Hour || ttl > 72*time.Hour {
		t.Errorf("done PTTL = %v, want about 72h", ttl)
	}

	d := redisstore.New(rc) // default prefix
	c, err = d.Claim(ctx, prefix+"default", time.Minute)
	if err != nil || c.Result != webhook.Claimed {
		t.Fatalf("Claim with default prefix = %+v, %v", c, err)
	}
	defer rc.Del(ctx, redisstore.DefaultPrefix+prefix+"default")
	if n := rc.Exists(ctx, redisstore.DefaultPrefix+prefix+"default").Val(); n != 1 {
		t.Errorf("key %q not found", redisstore.DefaultPrefix+prefix+"default")
	}
}

// TestForeignValue: a key this store did not write is reported and left alone.
func TestForeignValue(t *testing.T) {
	ctx := context.Background()
	s, rc, prefix := newStore(t)
	rc.Set(ctx, prefix+"str", "someone else's", 0)
	rc.HSet(ctx, prefix+"hash", "f", "v")
	for _, tc := range []struct {
		key  string
		want error
	}{
		{"str", redisstore.ErrUnexpectedValue},
		{"hash", nil}, // WRONGTYPE, a Redis error
	} {
		c, err := s.Claim(ctx, tc.key, time.Minute)
		if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) || c.Result == webhook.Claimed {
			t.Errorf("Claim(%s) = %+v, %v; want an error (%v)", tc.key, c, err, tc.want)
		}
	}
	if v := rc.Get(ctx, prefix+"str").Val(); v != "someone else's" {
		t.Errorf("foreign value changed to %q", v)
	}
}

// twice runs every script call twice, as go-redis does when it retries a
// call whose reply was lost after Redis ran it.
type twice struct{}

func (twice) DialHook(next redis.DialHook) redis.DialHook { return next }
func (twice) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (twice) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			_ = next(ctx, cmd)
		}
		return next(ctx, cmd)
	}
}

// TestRetriedCalls: a retried Claim, Extend or Complete answers as its
// first run did; a second, separate Complete is refused.
func TestRetriedCalls(t *testing.T) {
	ctx := context.Background()
	_, rc, prefix := newStore(t)
	rc.AddHook(twice{})
	s := redisstore.New(rc, redisstore.WithPrefix(prefix))

	c, err := s.Claim(ctx, "evt", time.Minute)
	if err != nil || c.Result != webhook.Claimed {
		t.Fatalf("retried Claim = %+v, %v; want Claimed", c, err)
	}
	if err := s.Extend(ctx, c, time.Minute); err != nil {
		t.Errorf("retried Extend = %v", err)
	}
	if err := s.Complete(ctx, c, time.Hour); err != nil {
		t.Errorf("retried Complete = %v", err)
	}
	if err := s.Complete(ctx, c, time.Hour); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Errorf("second Complete = %v, want ErrLeaseLost", err)
	}
	if c, err := s.Claim(ctx, "evt", time.Minute); err != nil || c.Result != webhook.Done {
		t.Errorf("Claim after Complete = %+v, %v; want Done", c, err)
	}
	c, err = s.Claim(ctx, "other", time.Minute)
	if err != nil || c.Result != webhook.Claimed {
		t.Fatalf("Claim other = %+v, %v", c, err)
	}
	// Documented: the retry of a Release finds the key gone.
	if err := s.Release(ctx, c); !errors.Is(err, webhook.ErrLeaseLost) {
		t.Errorf("retried Release = %v, want ErrLeaseLost", err)
	}
	if n := rc.Exists(ctx, prefix+"other").Val(); n != 0 {
		t.Errorf("released key still there")
	}
}

// faults breaks the connections of a client at chosen moments, as a
// network or a killed client does: the next command lost before it
// reaches Redis, the next reply lost after Redis ran the script, or the
// next dials refused.
type faults struct {
	cutBeforeSend atomic.Bool
	cutAfterRun   atomic.Bool
	refuseDials   atomic.Int32
}

// dial is a redis.Options.Dialer whose connections f can break.
func (f *faults) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	if f.refuseDials.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "dial", Net: network, Err: syscall.ECONNREFUSED}
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &faultyConn{Conn: c, f: f}, nil
}

type faultyConn struct {
	net.Conn
	f *faults
}

func (c *faultyConn) Write(p []byte) (int, error) {
	if c.f.cutBeforeSend.CompareAndSwap(true, false) {
		c.Conn.Close() // the write fails on the closed connection
	}
	return c.Conn.Write(p)
}

func (c *faultyConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	// An integer reply: the script ran (a NOSCRIPT error did not run it).
	if n > 0 && p[0] == ':' && c.f.cutAfterRun.CompareAndSwap(true, false) {
		c.Conn.Close()
		return 0, io.EOF
	}
	return n, err
}

// TestTokenCheckedCallsRetriedOnFreshConnection: Extend, Complete and
// Release that lose their connection run again on another one, within
// their context, also when the client does not retry (MaxRetries -1) or
// its own retries run out. A Complete whose reply was lost after it ran
// recognises its own work; a Release in that case reports ErrLeaseLost,
// as documented, though the key is released.
func TestTokenCheckedCallsRetriedOnFreshConnection(t *testing.T) {
	type call = func(context.Context, *redisstore.Store, webhook.Claim) error
	extend := func(ctx context.Context, s *redisstore.Store, c webhook.Claim) error {
		return s.Extend(ctx, c, time.Hour)
	}
	complete := func(ctx context.Context, s *redisstore.Store, c webhook.Claim) error {
		return s.Complete(ctx, c, time.Hour)
	}
	release := func(ctx context.Context, s *redisstore.Store, c webhook.Claim) error {
		return s.Release(ctx, c)
	}
	faultCases := []struct {
		name      string
		opts      redis.Options // retries of the client
		fail      func(*faults)
		replyLost bool
	}{
		{"cut before the command reached Redis, client without retries", redis.Options{MaxRetries: -1},
			func(f *faults) { f.cutBeforeSend.Store(true) }, false},
		{"reply lost after the script ran, client without retries", redis.Options{MaxRetries: -1},
			func(f *faults) { f.cutAfterRun.Store(true) }, true},
		{"connections refused past the client's own retries", redis.Options{MaxRetries: 1, DialerRetries: 1},
			func(f *faults) { f.cutBeforeSend.Store(true); f.refuseDials.Store(4) }, false},
	}
	ops := []struct {
		name string
		call call
		// lostReply is the error wanted when the reply was lost.
		lostReply error
		after     webhook.ClaimResult // the key's state after
	}{
		{"Extend", extend, nil, webhook.InProgress},
		{"Complete", complete, nil, webhook.Done},
		{"Release", release, webhook.ErrLeaseLost, webhook.Claimed},
	}
	admin := newClient(t)
	for _, fc := range faultCases {
		for _, op := range ops {
			t.Run(fc.name+"/"+op.name, func(t *testing.T) {
				f := &faults{}
				opts := fc.opts
				opts.Addr, opts.ContextTimeoutEnabled, opts.Dialer = testenv.Redis(t), true, f.dial
				rc := redis.NewClient(&opts)
				t.Cleanup(func() { rc.Close() })
				s := redisstore.New(rc, redisstore.WithPrefix(newPrefix(t, admin)))
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := s.Claim(ctx, "evt", time.Minute)
				if err != nil || c.Result != webhook.Claimed {
					t.Fatalf("Claim = %+v, %v", c, err)
				}
				fc.fail(f)
				err = op.call(ctx, s, c)
				var want error
				if fc.replyLost {
					want = op.lostReply
				}
				if !errors.Is(err, want) || (want == nil && err != nil) {
					t.Fatalf("%s after the connection died = %v, want %v", op.name, err, want)
				}
				if f.cutBeforeSend.Load() || f.cutAfterRun.Load() || f.refuseDials.Load() > 0 {
					t.Fatal("the fault did not happen: the test proves nothing")
				}
				if got, err := s.Claim(ctx, "evt", time.Minute); err != nil || got.Result != op.after {
					t.Fatalf("Claim after %s = %v, %v; want %v", op.name, got.Result, err, op.after)
				}
			})
		}
	}
}
