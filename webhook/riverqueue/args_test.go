package riverqueue

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/resilient-go/resilient/webhook"
)

func TestEventType(t *testing.T) {
	tests := []struct {
		body, want string
	}{
		{`{"type":"invoice.paid","id":"evt_1"}`, "invoice.paid"},
		{`{"id":"evt_1","data":{"type":"nested"}}`, ""},
		{`{"type":""}`, ""},
		{`{"type":42}`, ""},
		{`{"type":null}`, ""},
		{`["type"]`, ""},
		{`not json`, ""},
		{``, ""},
		{`{"type":"a\u00e9b"}`, "aéb"},
		{`{"type":"x"} trailing`, ""},
		{`{"Type":"x"}`, ""},
		{`{"type":"a","type":"b"}`, "b"},
	}
	for _, tt := range tests {
		if got := eventType([]byte(tt.body)); got != tt.want {
			t.Errorf("eventType(%q) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func FuzzEventType(f *testing.F) {
	for _, s := range []string{`{"type":"a"}`, `{"type":1}`, `[]`, ``, `{"type":"\ud800"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got := eventType(body)
		if got == "" {
			return
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("type %q from a body that is not a JSON object: %v", got, err)
		}
		if s, _ := v["type"].(string); s != got {
			t.Fatalf("type %q, body's type %v", got, v["type"])
		}
	})
}

// The args survive River's JSON exactly: body bytes that are not UTF-8,
// the key, the timestamp; credentials and hop-by-hop headers are dropped.
func TestEventArgsRoundTrip(t *testing.T) {
	e := webhook.Event{
		ID:        "evt_1",
		Timestamp: time.Unix(1700000000, 0),
		Body:      []byte("{\"type\":\"t\"}\xff\x00"),
		Header: http.Header{
			"Webhook-Id":     {"evt_1"},
			"X-Github-Event": {"push"},
			"Authorization":  {"Bearer secret"},
			"Cookie":         {"s=1"},
			"Connection":     {"close"},
		},
	}
	raw, err := json.Marshal(NewEventArgs(e))
	if err != nil {
		t.Fatal(err)
	}
	var a EventArgs
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatal(err)
	}
	got := a.Event()
	if got.ID != e.ID || !got.Timestamp.Equal(e.Timestamp) || !bytes.Equal(got.Body, e.Body) || a.Key != e.Key() {
		t.Fatalf("round trip: %+v, key %q; want %+v, key %q", got, a.Key, e, e.Key())
	}
	want := http.Header{"Webhook-Id": {"evt_1"}, "X-Github-Event": {"push"}}
	if len(got.Header) != len(want) || got.Header.Get("X-Github-Event") != "push" || got.Header.Get("Webhook-Id") != "evt_1" {
		t.Fatalf("header = %v, want %v", got.Header, want)
	}
	if a.Type != "" { // the body is not JSON: trailing bytes
		t.Fatalf("type = %q", a.Type)
	}
}

func TestInsertOptsUniqueAcrossAllStates(t *testing.T) {
	o := EventArgs{}.InsertOpts()
	if o.MaxAttempts != DefaultAttempts || !o.UniqueOpts.ByArgs || o.UniqueOpts.ByPeriod != 0 || o.UniqueOpts.ByQueue {
		t.Fatalf("InsertOpts = %+v", o)
	}
	for _, s := range rivertype.JobStates() {
		if !slices.Contains(o.UniqueOpts.ByState, s) {
			t.Errorf("ByState lacks %s", s)
		}
	}
}

// TestEventKeySurvivesTheQueue: the event the worker rebuilds has the key
// the receiver derived, not one derived anew.
func TestEventKeySurvivesTheQueue(t *testing.T) {
	e := webhook.Event{ID: "evt_1", Body: []byte(`{"id":"evt_1"}`)}.WithKey("k1")
	args := NewEventArgs(e)
	if got := args.Event().Key(); got != "k1" {
		t.Fatalf("Key() = %q after the queue, want k1", got)
	}
}
