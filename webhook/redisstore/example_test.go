package redisstore_test

import (
	"context"
	"log"
	"net/http"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

// Every replica of the receiver runs this: they share the Redis, so an
// event is processed by one of them, once.
func Example() {
	client := redis.NewClient(&redis.Options{
		Addr:                  "127.0.0.1:6379",
		ContextTimeoutEnabled: true, // store calls end at the handler's store timeout
	})
	defer client.Close()

	verifier, err := webhook.StandardWebhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
	if err != nil {
		log.Fatal(err)
	}
	process := func(ctx context.Context, e webhook.Event) error {
		log.Printf("event %s: %d bytes", e.ID, len(e.Body))
		return nil
	}
	http.Handle("/webhooks", webhook.Handler(verifier, process,
		webhook.WithStore(redisstore.New(client, redisstore.WithPrefix("billing:webhook:")))))
	// http.ListenAndServe(":8080", nil) with the timeouts docs/webhooks.md lists (or webhook.NewServer).
}
