package redisfleet_test

import (
	"log/slog"
	"os"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient"
	"github.com/resilient-go/resilient/redisfleet"
)

// Every replica of the service builds its client the same way: one quota
// of 100 requests/s per partner host for all the replicas together, and
// the throttle gates and circuit breakers shared. examples/replicas runs
// four of them.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer rdb.Close()
	fleet := redisfleet.New(rdb, redisfleet.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, nil))))
	defer fleet.Close()

	client := resilient.New(resilient.Recommended(),
		resilient.WithLimiter(fleet.Limiter(redisfleet.Quota{Limit: 100, Replicas: 4})),
		resilient.WithFleet(fleet))
	_ = client // client.Get("https://partner.example/...")
}
