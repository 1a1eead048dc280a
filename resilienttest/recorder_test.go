package resilienttest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	rt "github.com/resilient-go/resilient/resilienttest"
)

// echo answers with the request body it read.
var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Write(b)
})

// TestRecorderSides records the same request on the client side and on the
// server side, and checks that the next handler still gets the body.
func TestRecorderSides(t *testing.T) {
	var client, server rt.Recorder
	srv := httptest.NewServer(server.Handler(echo))
	defer srv.Close()
	c := &http.Client{Transport: client.Transport(http.DefaultTransport)}
	defer c.CloseIdleConnections()

	req := mustRequest(t, http.MethodPost, srv.URL+"/v1/charges?x=1", strings.NewReader("amount=42"))
	req.Header.Set("Idempotency-Key", "order-1-charge")
	resp, err := c.Do(req)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, "amount=42", string(got), "the body reaches the server whole")

	for name, rec := range map[string]*rt.Recorder{"client": &client, "server": &server} {
		attempts := rec.Attempts()
		require.Len(t, attempts, 1, name)
		a := attempts[0]
		assert.Equal(t, http.MethodPost, a.Method, name)
		assert.Equal(t, srv.URL+"/v1/charges?x=1", a.URL.String(), name)
		assert.Equal(t, "order-1-charge", a.IdempotencyKey(), name)
		assert.Equal(t, "amount=42", string(a.Body), name)
		assert.NoError(t, a.BodyErr, name)
		assert.False(t, a.Time.IsZero(), name)
	}
}

// TestRecorderKeepsGetBody checks that a request that could produce its
// body again still can, behind the recorder.
func TestRecorderKeepsGetBody(t *testing.T) {
	var rec rt.Recorder
	var seen *http.Request
	next := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		seen = r
		return rt.InMemory(echo).RoundTrip(r)
	})
	req := mustRequest(t, http.MethodPut, "http://api.test/", bytes.NewReader([]byte("abc")))
	resp, err := rec.Transport(next).RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.NotNil(t, seen.GetBody)
	b, err := seen.GetBody()
	require.NoError(t, err)
	again, _ := io.ReadAll(b)
	assert.Equal(t, "abc", string(again))
	assert.NotSame(t, req, seen, "the caller's request is not changed")
}

// TestRecorderBodyError records a body that fails, and hands the same
// failure on.
func TestRecorderBodyError(t *testing.T) {
	var rec rt.Recorder
	broken := errors.New("disk on fire")
	body := io.MultiReader(strings.NewReader("par"), failingReader{broken})
	req := mustRequest(t, http.MethodPost, "http://api.test/", body)
	resp, err := rec.Transport(rt.InMemory(echo)).RoundTrip(req)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, string(got), "disk on fire", "next sees the same failure")

	a := rec.Attempts()[0]
	assert.Equal(t, "par", string(a.Body))
	assert.ErrorIs(t, a.BodyErr, broken)
}

// TestRecorderCopies checks that Attempts returns copies.
func TestRecorderCopies(t *testing.T) {
	var rec rt.Recorder
	req := mustRequest(t, http.MethodPost, "http://api.test/a", strings.NewReader("body"))
	req.Header.Set("X-A", "1")
	resp, err := rec.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()

	first := rec.Attempts()
	first[0].Header.Set("X-A", "changed")
	first[0].Body[0] = 'B'
	first[0].URL.Path = "/changed"
	again := rec.Attempts()[0]
	assert.Equal(t, "1", again.Header.Get("X-A"))
	assert.Equal(t, "body", string(again.Body))
	assert.Equal(t, "/a", again.URL.Path)

	req.Header.Set("X-A", "2") // nor does changing the request afterwards
	assert.Equal(t, "1", rec.Attempts()[0].Header.Get("X-A"))
}

func TestRecorderConcurrent(t *testing.T) {
	var rec rt.Recorder
	srv := httptest.NewServer(rec.Handler(nil))
	defer srv.Close()
	client := &http.Client{Transport: rec.Transport(http.DefaultTransport)}
	defer client.CloseIdleConnections()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			resp, err := client.Post(srv.URL, "text/plain", strings.NewReader(fmt.Sprint(i)))
			if assert.NoError(t, err) {
				resp.Body.Close()
			}
			_ = rec.Attempts()
			_ = rec.Count()
		})
	}
	wg.Wait()
	assert.Equal(t, 40, rec.Count(), "each request recorded on both sides")
	bodies := map[string]int{}
	for _, a := range rec.Attempts() {
		bodies[string(a.Body)]++
	}
	for i := range 20 {
		assert.Equal(t, 2, bodies[fmt.Sprint(i)])
	}
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
