package redisstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/resilient-go/resilient/webhook"
	"github.com/resilient-go/resilient/webhook/redisstore"
)

// secret is the Standard Webhooks secret of the test deliveries.
var secret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("redisstore-test-secret-32-bytes!"))

func verifier(t testing.TB) webhook.Verifier {
	t.Helper()
	v, err := webhook.StandardWebhooks(secret)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// deliver posts a validly signed delivery of event id to url and returns
// the status and the Retry-After header.
func deliver(ctx context.Context, t testing.TB, client *http.Client, url, id string, body []byte) (int, string) {
	t.Helper()
	now := time.Now()
	sig, err := webhook.SignStandardWebhooks(secret, id, now, body)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	req.Header.Set(webhook.HeaderWebhookID, id)
	req.Header.Set(webhook.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderWebhookSignature, sig)
	resp, err := client.Do(req)
	if err != nil {
		t.Errorf("deliver %s: %v", id, err)
		return 0, ""
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Retry-After")
}

// TestHandlerRedisDown: when Redis refuses connections or hangs, a delivery
// gets 503 with Retry-After within the store timeout, never 200, and the
// event is not processed.
func TestHandlerRedisDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		addr func(*testing.T) string
	}{
		{"closed port", closedPort},
		{"hung server", stalledRedis},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc := redis.NewClient(&redis.Options{Addr: tc.addr(t)}) // ContextTimeoutEnabled off: the store bounds the wait
			t.Cleanup(func() { rc.Close() })
			var processed atomic.Int64
			h := webhook.Handler(verifier(t), func(context.Context, webhook.Event) error {
				processed.Add(1)
				return nil
			}, webhook.WithStore(redisstore.New(rc)), webhook.WithStoreTimeout(200*time.Millisecond))
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			for range 2 {
				status, retryAfter := deliver(t.Context(), t, srv.Client(), srv.URL, "evt_down", []byte(`{"n":1}`))
				if status != http.StatusServiceUnavailable || retryAfter == "" {
					t.Errorf("status %d, Retry-After %q; want 503 with Retry-After", status, retryAfter)
				}
			}
			if n := processed.Load(); n != 0 {
				t.Errorf("process ran %d times with Redis down", n)
			}
		})
	}
}

// TestHandlerTwoReplicas: two receivers sharing one Redis; while one
// processes an event, the other answers 409 for it; once done, 200 without
// processing it again.
func TestHandlerTwoReplicas(t *testing.T) {
	admin := newClient(t)
	prefix := newPrefix(t, admin)
	entered, finish := make(chan struct{}), make(chan struct{})
	var processed atomic.Int64
	process := func(ctx context.Context, e webhook.Event) error {
		if processed.Add(1) == 1 {
			close(entered)
			<-finish
		}
		return nil
	}
	var urls []string
	for range 2 {
		rc := newClient(t)
		srv := httptest.NewServer(webhook.Handler(verifier(t), process,
			webhook.WithStore(redisstore.New(rc, redisstore.WithPrefix(prefix)))))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	client := &http.Client{}
	t.Cleanup(client.CloseIdleConnections)
	body := []byte(`{"n":2}`)

	first := make(chan int, 1)
	go func() {
		status, _ := deliver(t.Context(), t, client, urls[0], "evt_two", body)
		first <- status
	}()
	select {
	case <-entered:
	case status := <-first:
		t.Fatalf("first delivery answered %d without processing", status)
	}
	if status, _ := deliver(t.Context(), t, client, urls[1], "evt_two", body); status != http.StatusConflict {
		t.Errorf("redelivery to replica 2 while processing: %d, want 409", status)
	}
	close(finish)
	if status := <-first; status != http.StatusOK {
		t.Errorf("first delivery: %d, want 200", status)
	}
	for _, url := range urls {
		if status, _ := deliver(t.Context(), t, client, url, "evt_two", body); status != http.StatusOK {
			t.Errorf("redelivery after done: %d, want 200", status)
		}
	}
	if n := processed.Load(); n != 1 {
		t.Errorf("processed %d times, want 1", n)
	}
}
