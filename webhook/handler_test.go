package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// delivery builds a signed Standard Webhooks request for an event.
func delivery(t *testing.T, id string, body string) *http.Request {
	t.Helper()
	now := time.Now()
	sig, err := SignStandardWebhooks(testSecret, id, now, []byte(body))
	require.NoError(t, err)
	r := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(body))
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	r.Header.Set("webhook-signature", sig)
	return r
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func newTestHandler(t *testing.T, process func(context.Context, Event) error, opts ...HandlerOption) http.Handler {
	v, err := StandardWebhooks(testSecret)
	require.NoError(t, err)
	return Handler(v, process, opts...)
}

func TestHandlerResponses(t *testing.T) {
	var processed []Event
	h := newTestHandler(t, func(_ context.Context, e Event) error {
		processed = append(processed, e)
		return nil
	}, WithMaxBodyBytes(64))

	get := httptest.NewRequest(http.MethodGet, "/webhooks", nil)
	w := serve(h, get)
	assert.Equal(t, http.StatusMethodNotAllowed, w.Code)
	assert.Equal(t, "POST", w.Header().Get("Allow"))

	big := delivery(t, "msg_big", strings.Repeat("x", 65))
	assert.Equal(t, http.StatusRequestEntityTooLarge, serve(h, big).Code)

	unsigned := httptest.NewRequest(http.MethodPost, "/webhooks", strings.NewReader(`{}`))
	w = serve(h, unsigned)
	assert.Equal(t, http.StatusBadRequest, w.Code)
	assert.NotContains(t, w.Body.String(), "webhook-id", "no detail of what failed")

	forged := delivery(t, "msg_1", `{"type":"payment.completed"}`)
	forged.Header.Set("webhook-signature", "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	w = serve(h, forged)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Equal(t, "webhook signature rejected\n", w.Body.String())

	stale := delivery(t, "msg_1", `{"type":"payment.completed"}`)
	stale.Header.Set("webhook-timestamp", strconv.FormatInt(time.Now().Add(-time.Hour).Unix(), 10))
	assert.Equal(t, http.StatusUnauthorized, serve(h, stale).Code)

	assert.Empty(t, processed)

	ok := delivery(t, "msg_1", `{"type":"payment.completed"}`)
	assert.Equal(t, http.StatusOK, serve(h, ok).Code)
	again := delivery(t, "msg_1", `{"type":"payment.completed"}`)
	assert.Equal(t, http.StatusOK, serve(h, again).Code, "a duplicate is acknowledged")
	require.Len(t, processed, 1, "and not processed twice")
	assert.Equal(t, "msg_1", processed[0].ID)
	assert.Equal(t, `{"type":"payment.completed"}`, string(processed[0].Body))
	assert.WithinDuration(t, time.Now(), processed[0].Timestamp, 2*time.Second)
}

// TestHandlerExactlyOnceConcurrent delivers one event 100 times at once.
func TestHandlerExactlyOnceConcurrent(t *testing.T) {
	var calls atomic.Int32
	release := make(chan struct{})
	h := newTestHandler(t, func(context.Context, Event) error {
		calls.Add(1)
		<-release // hold the claim until every other delivery has been answered
		return nil
	})
	const n = 100
	reqs := make([]*http.Request, n)
	for i := range reqs {
		reqs[i] = delivery(t, "msg_same", `{"amount":42}`)
	}
	codes := make([]int, n)
	var others sync.WaitGroup
	var all sync.WaitGroup
	others.Add(n - 1)
	var answered atomic.Int32
	for i := range n {
		all.Go(func() {
			codes[i] = serve(h, reqs[i]).Code
			if answered.Add(1) < n {
				others.Done()
			}
		})
	}
	others.Wait()
	close(release)
	all.Wait()
	assert.Equal(t, int32(1), calls.Load())
	count := map[int]int{}
	for _, c := range codes {
		count[c]++
	}
	assert.Equal(t, map[int]int{200: 1, 409: n - 1}, count)
	assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_same", `{"amount":42}`)).Code)
	assert.Equal(t, int32(1), calls.Load())
}

func TestHandlerProcessFailureReleases(t *testing.T) {
	var calls int
	h := newTestHandler(t, func(context.Context, Event) error {
		calls++
		if calls == 1 {
			return errors.New("database down")
		}
		return nil
	})
	assert.Equal(t, http.StatusInternalServerError, serve(h, delivery(t, "msg_f", `{}`)).Code)
	assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_f", `{}`)).Code, "redelivery processes it")
	assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_f", `{}`)).Code)
	assert.Equal(t, 2, calls)
}

func TestHandlerPanicReleases(t *testing.T) {
	calls := 0
	h := newTestHandler(t, func(context.Context, Event) error {
		calls++
		if calls == 1 {
			panic("bug")
		}
		return nil
	})
	assert.Panics(t, func() { serve(h, delivery(t, "msg_p", `{}`)) })
	assert.Equal(t, http.StatusOK, serve(h, delivery(t, "msg_p", `{}`)).Code)
	assert.Equal(t, 2, calls)
}

// countingReader counts the bytes read from an endless body.
type countingReader struct{ n atomic.Int64 }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}

func TestHandlerOversizedBodyNotReadWhole(t *testing.T) {
	h := newTestHandler(t, func(context.Context, Event) error { return nil }, WithMaxBodyBytes(1024))
	body := &countingReader{}
	r := httptest.NewRequest(http.MethodPost, "/webhooks", io.LimitReader(body, 1<<30))
	r.ContentLength = -1 // chunked: the size is unknown up front
	assert.Equal(t, http.StatusRequestEntityTooLarge, serve(h, r).Code)
	assert.Less(t, body.n.Load(), int64(64<<10), "read stops at the limit")

	declared := httptest.NewRequest(http.MethodPost, "/webhooks", bytes.NewReader(make([]byte, 2048)))
	assert.Equal(t, http.StatusRequestEntityTooLarge, serve(h, declared).Code)
}

func TestHandlerEventIDs(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := WithClock(func() time.Time { return now })
	var got []Event
	process := func(_ context.Context, e Event) error { got = append(got, e); return nil }

	st, _ := Stripe("whsec_s", clock)
	stBody := `{"id":"evt_9","type":"charge.succeeded"}`
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(stBody))
	r.Header.Set("Stripe-Signature", SignStripe("whsec_s", now, []byte(stBody)))
	serve(Handler(st, process), r)

	gh, _ := GitHub("g")
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"zen":"x"}`))
	r.Header.Set("X-Hub-Signature-256", SignGitHub("g", []byte(`{"zen":"x"}`)))
	r.Header.Set("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	serve(Handler(gh, process), r)

	hm, _ := HMAC("h", clock)
	sig, ts := SignHMAC("h", now, []byte(`[1,2]`))
	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`[1,2]`))
	r.Header.Set("X-Signature", sig)
	r.Header.Set("X-Timestamp", ts)
	serve(Handler(hm, process, WithEventID(func(h http.Header, _ []byte) string { return h.Get("X-Custom-Id") })), r)

	require.Len(t, got, 3)
	assert.Equal(t, "evt_9", got[0].ID)
	assert.Equal(t, signedIDKey("evt_9"), got[0].Key(), "the id is in the signed body")
	assert.Equal(t, now, got[0].Timestamp)
	assert.Equal(t, "72d3162e-cc78-11e3-81ab-4c9367dc0958", got[1].ID)
	assert.Equal(t, bodyKey([]byte(`{"zen":"x"}`)), got[1].Key(), "the delivery id is not signed")
	assert.True(t, got[1].Timestamp.IsZero())
	assert.True(t, strings.HasPrefix(got[2].ID, "sha256:"), got[2].ID)
	assert.Equal(t, bodyKey([]byte(`[1,2]`)), got[2].Key())
}
