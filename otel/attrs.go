package resilientotel

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Attribute keys of our own; the HTTP ones are semconv's.
const (
	// ReasonKey is why a retry waited: "backoff", "retry-after" or "hedge".
	ReasonKey = attribute.Key("resilient.retry.reason")
	// AttemptKey is the number of the attempt that ended (1 for the first).
	AttemptKey = attribute.Key("resilient.retry.attempt")
	// WaitKey is the wait before the next attempt, in seconds.
	WaitKey = attribute.Key("resilient.retry.wait")
	// BreakerKeyKey names a circuit breaker: by default scheme, host and
	// port, as [resilient.BreakerPolicy.Key] says.
	BreakerKeyKey = attribute.Key("resilient.breaker.key")
	// BreakerStateKey is a breaker state: "closed", "half_open" or "open".
	BreakerStateKey = attribute.Key("resilient.breaker.state")
)

// point is what the attributes of a measurement are made of: where the
// request went (method, server address and port; nothing of the path,
// query or user) and how the attempt ended. It is comparable, so that the
// attribute set of a frequent point is made once ([setCache]).
type point struct {
	method  attribute.KeyValue
	host    string
	port    int
	status  int
	errType string
	resend  int // 0 for a first attempt
}

// pointOf returns the point of an event. A nil request or URL leaves the
// target out.
func pointOf(req *http.Request, status int, err error, resend int) point {
	p := point{status: status, resend: resend}
	if err != nil {
		p.status, p.errType = 0, ErrorType(err)
	} else if status >= 400 {
		// As the HTTP semantic conventions say for clients: a status of
		// 400 or more is an error whose type is the status.
		p.errType = strconv.Itoa(status)
	}
	if req == nil {
		return p
	}
	p.method = method(req.Method)
	if req.URL != nil {
		p.host, p.port = strings.ToLower(req.URL.Hostname()), port(req.URL)
	}
	return p
}

// target appends method, server.address and server.port.
func (p point) target(kvs []attribute.KeyValue) []attribute.KeyValue {
	if p.method.Valid() {
		kvs = append(kvs, p.method)
	}
	if p.host != "" {
		kvs = append(kvs, semconv.ServerAddress(p.host))
	}
	if p.port > 0 {
		kvs = append(kvs, semconv.ServerPort(p.port))
	}
	return kvs
}

// outcome appends http.response.status_code and error.type.
func (p point) outcome(kvs []attribute.KeyValue) []attribute.KeyValue {
	if p.status > 0 {
		kvs = append(kvs, semconv.HTTPResponseStatusCode(p.status))
	}
	if p.errType != "" {
		kvs = append(kvs, semconv.ErrorTypeKey.String(p.errType))
	}
	return kvs
}

// attrs returns all the attributes of an attempt: target, outcome and
// http.request.resend_count after the first.
func (p point) attrs() []attribute.KeyValue {
	kvs := p.outcome(p.target(make([]attribute.KeyValue, 0, 6)))
	if p.resend > 0 {
		kvs = append(kvs, semconv.HTTPRequestResendCount(p.resend))
	}
	return kvs
}

// maxSets bounds the attribute sets kept: as many as the SDK's default
// limit of series per instrument.
const maxSets = 2000

// setCache keeps the attribute sets of the attempt points seen, up to a
// bound, so that a frequent point costs a map lookup, not a sorted copy.
// Past the bound, sets are made each time, as without a cache.
type setCache struct {
	m    sync.Map // point -> attribute.Set
	n    atomic.Int64
	size int64
}

func (c *setCache) get(p point) attribute.Set {
	if s, ok := c.m.Load(p); ok {
		return s.(attribute.Set)
	}
	s := attribute.NewSet(p.attrs()...)
	if c.n.Load() < c.size {
		if _, loaded := c.m.LoadOrStore(p, s); !loaded {
			c.n.Add(1)
		}
	}
	return s
}

// method returns http.request.method: the known methods as they are (they
// are case-sensitive), "" as GET as net/http does, any other as "_OTHER",
// so that made-up methods cannot grow the number of series.
func method(m string) attribute.KeyValue {
	switch m {
	case "", http.MethodGet:
		return semconv.HTTPRequestMethodGet
	case http.MethodHead:
		return semconv.HTTPRequestMethodHead
	case http.MethodPost:
		return semconv.HTTPRequestMethodPost
	case http.MethodPut:
		return semconv.HTTPRequestMethodPut
	case http.MethodPatch:
		return semconv.HTTPRequestMethodPatch
	case http.MethodDelete:
		return semconv.HTTPRequestMethodDelete
	case http.MethodOptions:
		return semconv.HTTPRequestMethodOptions
	case http.MethodTrace:
		return semconv.HTTPRequestMethodTrace
	case http.MethodConnect:
		return semconv.HTTPRequestMethodConnect
	case "QUERY":
		return semconv.HTTPRequestMethodQuery
	}
	return semconv.HTTPRequestMethodOther
}

// port returns the URL's port, or the scheme's default; 0 when unknown.
func port(u *url.URL) int {
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 || n > 65535 {
			return 0
		}
		return n
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		return 80
	case "https", "wss":
		return 443
	}
	return 0
}
