package main

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/resilient-go/resilient/webhook"
)

// sender signs events the way a payment provider does and delivers them.
type sender struct {
	url    string
	secret string
	client *http.Client
	out    io.Writer
}

// delivery is one attempt to deliver an event; tamper and at let the demo
// show what the receiver refuses.
type delivery struct {
	id     string
	body   string
	note   string
	at     time.Time // signing time; zero: now
	tamper bool      // change the body after signing
}

func (s *sender) deliver(d delivery) int {
	at := d.at
	if at.IsZero() {
		at = time.Now()
	}
	sig, err := webhook.SignStandardWebhooks(s.secret, d.id, at, []byte(d.body))
	if err != nil {
		panic(err)
	}
	body := d.body
	if d.tamper {
		body = strings.Replace(body, "4200", "1", 1)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", d.id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := s.client.Do(req)
	if err != nil {
		fmt.Fprintf(s.out, "  sender:   %s %s → error %v\n", d.id, d.note, err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	fmt.Fprintf(s.out, "  sender:   %s %s → %s\n", d.id, d.note, resp.Status)
	return resp.StatusCode
}
