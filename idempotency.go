package resilient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// DefaultIdempotencyHeader is the header that carries idempotency keys.
const DefaultIdempotencyHeader = "Idempotency-Key"

// ErrInvalidIdempotencyKey is returned, before anything is sent, for a key
// that cannot be a header value: empty, longer than 255 bytes, or holding a
// control character such as CR or LF.
var ErrInvalidIdempotencyKey = errors.New("resilient: invalid idempotency key")

// IdempotencyOption configures [WithIdempotencyKey].
type IdempotencyOption interface {
	applyIdempotency(*idempotency)
}

type idemOptionFunc func(*idempotency)

func (f idemOptionFunc) applyIdempotency(i *idempotency) { f(i) }

// IdempotencyHeader sets the header name (default Idempotency-Key).
func IdempotencyHeader(name string) IdempotencyOption {
	return idemOptionFunc(func(i *idempotency) {
		if name != "" {
			i.header = http.CanonicalHeaderKey(name)
		}
	})
}

// IdempotencyMethods sets the methods that get a generated key (default
// POST and PATCH).
func IdempotencyMethods(methods ...string) IdempotencyOption {
	return idemOptionFunc(func(i *idempotency) { i.methods = slices.Clone(methods) })
}

// IdempotencyGenerator replaces the random UUIDv4 generator, for keys of
// your own form. Its keys are checked like any other.
func IdempotencyGenerator(f func() (string, error)) IdempotencyOption {
	return idemOptionFunc(func(i *idempotency) {
		if f != nil {
			i.generate = f
		}
	})
}

// IdempotencyStructuredField sends keys in the quoted Structured Field form
// of the IETF draft (draft-ietf-httpapi-idempotency-key-header):
// Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324". The default is
// the bare key, which Stripe, Adyen and most APIs expect.
func IdempotencyStructuredField() IdempotencyOption {
	return idemOptionFunc(func(i *idempotency) { i.quoted = true })
}

// WithIdempotencyKey adds an idempotency key to every request whose method
// is not idempotent (POST and PATCH by default) and that has none yet. A key
// the caller set, in the header or with [ContextWithIdempotencyKey], is used
// as it is; otherwise a random UUIDv4 is generated. The layer is outermost,
// so every attempt of one call carries the same key, and so does a POST or
// PATCH that http.Client resends after a 307 or 308 redirect; two calls
// never share a generated one. Having a key is also what lets the retry layer
// retry a POST or PATCH.
func WithIdempotencyKey(opts ...IdempotencyOption) Option {
	i := &idempotency{header: DefaultIdempotencyHeader, methods: []string{http.MethodPost, http.MethodPatch}, generate: newUUID}
	for _, o := range opts {
		if o != nil {
			o.applyIdempotency(i)
		}
	}
	return optionFunc(func(c *config) { c.idempotency = i })
}

type ctxKey struct{}

// ContextWithIdempotencyKey returns a context that makes the idempotency
// layer send key with the request, whatever its method: the caller's own
// business key for one call ("order-42-charge"), stable across processes
// and restarts, unlike a generated one.
//
// The key rides on every request sent with the context. That is intended
// for the redirects of one call: http.Client sends them with the request's
// context, so a POST redirected by a 307 or 308 carries the same key, as
// the same operation should. It is a pitfall when the context is reused
// for a different call, which would then send the same key and could be
// answered from the first call's stored result: derive a new context per
// call.
func ContextWithIdempotencyKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, ctxKey{}, key)
}

type idempotency struct {
	header   string
	methods  []string
	generate func() (string, error)
	quoted   bool
}

func (i *idempotency) layer(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &idempotencyTransport{wrapped: wrapped{next}, i: i}
}

type idempotencyTransport struct {
	wrapped
	i *idempotency
}

// RoundTrip implements http.RoundTripper.
func (t *idempotencyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	key, err := t.i.key(req)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	if key == "" {
		return t.next.RoundTrip(req)
	}
	r := shallowCopy(req)
	r.Header = withHeader(req.Header, t.i.header, key)
	return t.next.RoundTrip(r)
}

// key returns the key to add to req, "" when none is needed.
func (i *idempotency) key(req *http.Request) (string, error) {
	if v, ok := req.Header[i.header]; ok && len(v) > 0 {
		return "", validKey(v[0]) // the caller's own header, sent as it is
	}
	key, fromCtx := req.Context().Value(ctxKey{}).(string)
	if !fromCtx {
		if !slices.Contains(i.methods, req.Method) {
			return "", nil
		}
		if prev := i.redirected(req); prev != "" {
			return prev, nil
		}
		var err error
		if key, err = i.generate(); err != nil {
			return "", fmt.Errorf("resilient: generating an idempotency key: %w", err)
		}
	}
	if err := validKey(key); err != nil {
		return "", err
	}
	if i.quoted { // an sf-string: quote, escaping \ and "
		key = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"`
	}
	return key, nil
}

// redirected returns the key this layer sent with the request whose
// response redirected req, when req is a redirect that http.Client follows
// (req.Response is set) and that still needs a key, as after a 307 or 308:
// the redirect is the same operation, so it keeps the same generated key.
func (i *idempotency) redirected(req *http.Request) string {
	if req.Response == nil || req.Response.Request == nil {
		return ""
	}
	v := req.Response.Request.Header[i.header]
	if len(v) == 0 || validKey(v[0]) != nil {
		return ""
	}
	return v[0]
}

// validKey rejects what cannot travel as a header value, and so can never
// inject a header.
func validKey(k string) error {
	switch {
	case k == "":
		return fmt.Errorf("%w: empty", ErrInvalidIdempotencyKey)
	case len(k) > 255:
		return fmt.Errorf("%w: %d bytes, more than 255", ErrInvalidIdempotencyKey, len(k))
	case strings.ContainsFunc(k, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%w: holds a control character", ErrInvalidIdempotencyKey)
	}
	return nil
}

// withHeader returns a copy of h with name set to value; h is not changed.
// All values share one backing array, as in http.Header.Clone.
func withHeader(h http.Header, name, value string) http.Header {
	n := 1
	for _, v := range h {
		n += len(v)
	}
	vals := make([]string, 0, n)
	out := make(http.Header, len(h)+1)
	for k, v := range h {
		vals = append(vals, v...)
		out[k] = vals[len(vals)-len(v) : len(vals) : len(vals)]
	}
	vals = append(vals, value)
	out[name] = vals[len(vals)-1:]
	return out
}

// newUUID returns a random (version 4) UUID from crypto/rand.
func newUUID() (string, error) {
	var u [16]byte
	if _, err := rand.Read(u[:]); err != nil {
		return "", err
	}
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant RFC 9562
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:]), nil
}
