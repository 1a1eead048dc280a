package webhook

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/http"
	"time"
)

// Event is one verified delivery, as handed to the process function.
type Event struct {
	// ID identifies the event across redeliveries: webhook-id for Standard
	// Webhooks, X-GitHub-Delivery for GitHub (not signed: see Key), the
	// JSON "id" for Stripe and HMAC, or what [WithEventID] returns. When
	// none is found it is "sha256:" and the hex SHA-256 of the body. It is
	// for logs and for process; dedupe uses Key.
	ID string
	// Timestamp is the signed time of the delivery; zero for GitHub.
	Timestamp time.Time
	// Header is the request's header.
	Header http.Header
	// Body is the raw body, exactly as received and verified.
	Body []byte

	key string // set by the Receiver
}

// Key returns the dedupe key of the event, what a [Store] sees: 64 hex
// characters (SHA-256), whatever the size of the id, and derived only from
// what the sender signed, so that a replayed body cannot pass as a new
// event:
//
//   - of the id, when the scheme signs it: webhook-id for Standard
//     Webhooks, the JSON "id" inside the signed body for Stripe and HMAC;
//   - of the body alone when the id is not signed (GitHub's
//     X-GitHub-Delivery: a replay of a captured body under an invented
//     delivery id has the same key) or there is none;
//   - of the id and the body's hash for ids from [WithEventID], which may
//     come from anywhere: the body hash binds the id to a signed body, so a
//     replayed body cannot take the key of an event yet to come.
//
// For an Event not built by a [Receiver], it is derived as for WithEventID.
func (e Event) Key() string {
	if e.key != "" {
		return e.key
	}
	if e.ID == "" {
		return bodyKey(e.Body)
	}
	return idBodyKey(e.ID, e.Body)
}

// WithKey returns a copy of e whose Key is key, for an event rebuilt from
// storage (a queue, a table) after a [Receiver] derived its key: the rebuilt
// event then has the key the store saw. An empty key is ignored.
func (e Event) WithKey(key string) Event {
	if key != "" {
		e.key = key
	}
	return e
}

// Domain tags keep the three kinds of key apart: an id can never hash to
// the key of a body, whatever its bytes.
const (
	tagSignedID = "resilient/webhook/v1/signed-id\x00"
	tagIDBody   = "resilient/webhook/v1/id+body\x00"
	tagBody     = "resilient/webhook/v1/body\x00"
)

func signedIDKey(id string) string {
	h := sha256.New()
	h.Write([]byte(tagSignedID))
	h.Write([]byte(id))
	return hex.EncodeToString(h.Sum(nil))
}

func idBodyKey(id string, body []byte) string {
	sum := sha256.Sum256(body)
	h := sha256.New()
	h.Write([]byte(tagIDBody))
	h.Write(binary.AppendUvarint(nil, uint64(len(id))))
	h.Write([]byte(id))
	h.Write(sum[:])
	return hex.EncodeToString(h.Sum(nil))
}

func bodyKey(body []byte) string {
	h := sha256.New()
	h.Write([]byte(tagBody))
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// newEvent builds the event of a verified delivery and its key.
func (rc *Receiver) newEvent(hdr http.Header, body []byte) Event {
	e := Event{Header: hdr, Body: body}
	signed := false
	if id, ok := rc.v.(identifier); ok {
		e.ID, signed, e.Timestamp = id.identify(hdr, body)
	}
	if rc.cfg.eventID != nil {
		if id := rc.cfg.eventID(hdr, body); id != "" {
			e.ID, signed = id, false
			e.key = idBodyKey(id, body)
		}
	}
	switch {
	case e.key != "":
	case e.ID != "" && signed:
		e.key = signedIDKey(e.ID)
	default:
		e.key = bodyKey(body)
	}
	if e.ID == "" {
		sum := sha256.Sum256(body)
		e.ID = "sha256:" + hex.EncodeToString(sum[:])
	}
	return e
}
