package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

// The sender's workload.
const (
	events    = 500
	senders   = 16 // deliveries in flight at once
	maxCopies = 3  // each event is delivered 1 to maxCopies times
)

// eventTypes cycle over the events; every 25th is brokenType.
var eventTypes = []string{"invoice.paid", "customer.updated", "charge.refunded"}

// delivery is one POST of one event.
type delivery struct {
	id, body string
}

// eventID is the id of the i-th event.
func eventID(i int) string { return fmt.Sprintf("evt_%03d", i) }

// workload returns every delivery of the events, duplicates included,
// shuffled (reproducibly) so that copies of one event arrive at different
// receivers at about the same time.
func workload() []delivery {
	var ds []delivery
	for i := range events {
		id := eventID(i)
		typ := eventTypes[i%len(eventTypes)]
		if i%25 == 24 {
			typ = brokenType
		}
		body := fmt.Sprintf(`{"id":%q,"type":%q,"data":{"amount":%d}}`, id, typ, 100+i)
		for range 1 + i%maxCopies {
			ds = append(ds, delivery{id: id, body: body})
		}
	}
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	return ds
}

// sendAll signs and delivers ds round-robin to urls, senders at a time,
// and returns how many were sent and how many acknowledged with 200.
func sendAll(ctx context.Context, urls []string, ds []delivery) (sent, acked int, err error) {
	tr := &http.Transport{MaxIdleConnsPerHost: senders}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var next, ok, done atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for range senders {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ds) || ctx.Err() != nil {
					return
				}
				code, err := send(ctx, client, urls[i%len(urls)], ds[i])
				done.Add(1)
				switch {
				case err != nil:
					once.Do(func() { firstErr = err })
				case code == http.StatusOK:
					ok.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(done.Load()), int(ok.Load()), firstErr
}

// send signs d as the provider would (Standard Webhooks) and posts it.
func send(ctx context.Context, client *http.Client, url string, d delivery) (int, error) {
	now := time.Now()
	sig, err := webhook.SignStandardWebhooks(secret, d.id, now, []byte(d.body))
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(d.body)))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhook.HeaderWebhookID, d.id)
	req.Header.Set(webhook.HeaderWebhookTimestamp, strconv.FormatInt(now.Unix(), 10))
	req.Header.Set(webhook.HeaderWebhookSignature, sig)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
