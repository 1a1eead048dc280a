package riverqueue

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/resilient-go/resilient/webhook"
)

// Kind is the River job kind of [EventArgs].
const Kind = "webhook_event"

// EventArgs are the River job args that carry one verified event from the
// receiver to the worker. [Handler] builds them; a [NewWorker] worker turns
// them back into a [webhook.Event]. They are stored as JSON in River's
// river_job.args column (the body as base64, so its bytes survive exactly).
//
// Jobs are unique by Key across every River job state (available, pending,
// scheduled, running, retryable, completed, discarded, cancelled): a
// redelivery of an event whose job still exists inserts nothing. River's
// job cleaner deletes finished jobs after its retention periods
// (river.Config CompletedJobRetentionPeriod, 24 h by default;
// DiscardedJobRetentionPeriod, 7 days), and only then can the same key be
// queued again: set CompletedJobRetentionPeriod to at least the senders'
// redelivery window (webhook.DefaultKeep, 72 h).
type EventArgs struct {
	// ID is the event id (webhook.Event.ID).
	ID string `json:"id"`
	// Key is the dedupe key (webhook.Event.Key): the only field River's
	// unique check looks at.
	Key string `json:"key" river:"unique"`
	// Type is the JSON "type" field of the body when the body is a JSON
	// object with a string "type" (Stripe, Standard Webhooks); empty
	// otherwise (GitHub sends it in the X-GitHub-Event header, kept in
	// Header).
	Type string `json:"type,omitempty"`
	// Timestamp is the signed time of the delivery; zero when the scheme
	// signs none.
	Timestamp time.Time `json:"timestamp,omitzero"`
	// Header holds the request's headers, except credentials
	// (Authorization, Proxy-Authorization, Cookie) and hop-by-hop headers.
	Header http.Header `json:"header,omitempty"`
	// Body is the raw body, exactly as received and verified.
	Body []byte `json:"body"`
}

// Kind returns "webhook_event", the job kind River routes to the worker.
func (EventArgs) Kind() string { return Kind }

// InsertOpts makes every insert unique by Key across all job states, and
// gives each job [DefaultAttempts] attempts (a worker's [WithAttempts]
// overrides it when it works the job).
func (EventArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{
		MaxAttempts: DefaultAttempts,
		UniqueOpts: river.UniqueOpts{
			ByArgs:  true,
			ByState: rivertype.JobStates(),
		},
	}
}

// Event returns the event the args carry, as the worker hands it to
// process.
func (a EventArgs) Event() webhook.Event {
	return webhook.Event{ID: a.ID, Timestamp: a.Timestamp, Header: a.Header, Body: a.Body}.WithKey(a.Key)
}

// NewEventArgs returns the job args for a verified event: its id, key,
// timestamp, body, type (see [EventArgs.Type]) and headers minus
// credentials. [Handler] uses it; call it yourself to enqueue an event
// inside a transaction of your own (client.InsertTx).
func NewEventArgs(e webhook.Event) EventArgs {
	return EventArgs{
		ID:        e.ID,
		Key:       e.Key(),
		Type:      eventType(e.Body),
		Timestamp: e.Timestamp,
		Header:    keptHeader(e.Header),
		Body:      e.Body,
	}
}

// eventType returns the "type" member of a JSON object body, matched
// exactly (encoding/json would also take "Type" or "TYPE"), or "" when the
// body is not a JSON object or its "type" is absent or not a string.
func eventType(body []byte) string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return ""
	}
	var typ string
	if json.Unmarshal(obj["type"], &typ) != nil {
		return ""
	}
	return typ
}

// droppedHeaders are not stored with a job: credentials, and hop-by-hop
// headers that describe the connection, not the event.
var droppedHeaders = map[string]bool{
	"Authorization":       true,
	"Proxy-Authorization": true,
	"Cookie":              true,
	"Connection":          true,
	"Keep-Alive":          true,
	"Proxy-Connection":    true,
	"Te":                  true,
	"Trailer":             true,
	"Transfer-Encoding":   true,
	"Upgrade":             true,
}

// keptHeader returns a copy of h without droppedHeaders; nil when nothing
// is left.
func keptHeader(h http.Header) http.Header {
	var out http.Header
	for k, vs := range h {
		if droppedHeaders[http.CanonicalHeaderKey(k)] {
			continue
		}
		if out == nil {
			out = make(http.Header, len(h))
		}
		out[k] = append([]string(nil), vs...)
	}
	return out
}
