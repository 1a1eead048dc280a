package redisstore_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient/internal/testenv"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

// newClient returns a client of the test Redis (skipping t when it is not
// running), closed when t ends.
func newClient(t testing.TB) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: testenv.Redis(t), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	return c
}

// newPrefix returns a key prefix unique to this run whose keys are deleted
// when t ends.
func newPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	prefix := testenv.Name("redisstore") + ":"
	t.Cleanup(func() { deleteKeys(t, c, prefix) })
	return prefix
}

// newStore returns a store on the test Redis under a fresh prefix.
func newStore(t testing.TB) (*redisstore.Store, *redis.Client, string) {
	t.Helper()
	c := newClient(t)
	prefix := newPrefix(t, c)
	return redisstore.New(c, redisstore.WithPrefix(prefix)), c, prefix
}

// deleteKeys removes every key under prefix (SCAN + DEL).
func deleteKeys(t testing.TB, c *redis.Client, prefix string) {
	t.Helper()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) == 1000 {
			c.Unlink(ctx, keys...)
			keys = keys[:0]
		}
	}
	if err := iter.Err(); err != nil {
		t.Errorf("scan %s*: %v", prefix, err)
	}
	if len(keys) > 0 {
		if err := c.Unlink(ctx, keys...).Err(); err != nil {
			t.Errorf("delete %s*: %v", prefix, err)
		}
	}
}
