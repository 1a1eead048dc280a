package resilient

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
)

// WithLogger writes one record per attempt, one per call and one per
// circuit breaker transition to l, with LogAttrs and the request's context
// (so handlers that add trace ids from the context work). Levels:
//
//   - Debug: an attempt or a call that succeeded, an attempt with no retry after it;
//   - Info: a call that ended on a 4xx; a breaker that closes or half-opens;
//   - Warn: an attempt that is retried (with the wait and its reason); a breaker that opens;
//   - Error: a call that ended on an error or a 5xx.
//
// Records carry the method, the URL as scheme://host/path, the names (never
// the values) of its name=value query parameters, the status or error, the
// attempt number and maximum, and durations. A query part with no name,
// such as the bare token of ?sk_live_123, is only counted, as
// query_unnamed. URL userinfo and fragments are never logged, and error
// texts are scrubbed of the request's URL in every form the standard
// library prints it (plain, %q-quoted, escaped, with the password masked)
// and of its query, fragment, user name and password. Headers are not
// logged unless [WithLogHeaders] names them; even then a header that may
// hold a secret is written as "[REDACTED]": see [WithRedactHeaders] for the
// list and how to extend it, [WithRevealHeaders] for how to narrow it.
// Idempotency keys are not secrets and are logged as they are, so that the
// attempts of one call can be matched.
//
// Without WithLogger (and [WithObserver]) no record is built at all. A nil
// l is ignored.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) {
		if l != nil {
			c.logger = l
		}
	})
}

// WithLogHeaders adds the named request headers to attempt
// records, redacted as [WithLogger] says.
func WithLogHeaders(names ...string) Option {
	return optionFunc(func(c *config) {
		for _, n := range names {
			c.logOpts.headers = append(c.logOpts.headers, http.CanonicalHeaderKey(n))
		}
	})
}

// WithRedactHeaders extends the redaction list with words: a header whose
// name contains one of them (case-insensitively) is written as "[REDACTED]"
// when [WithLogHeaders] names it. The list starts as:
//
//   - Authorization, Proxy-Authorization, Cookie and Set-Cookie, always;
//   - any name containing key, token, secret, signature or password, except
//     the idempotency-key headers (Idempotency-Key, X-Idempotency-Key and the
//     header set with [IdempotencyHeader]), which carry ids, not secrets.
//
// A word given here also hides an idempotency-key header that contains it.
func WithRedactHeaders(words ...string) Option {
	return optionFunc(func(c *config) {
		for _, w := range words {
			if w = strings.ToLower(strings.TrimSpace(w)); w != "" {
				c.logOpts.redact = append(c.logOpts.redact, w)
			}
		}
	})
}

// WithRevealHeaders narrows the redaction list: the named headers are
// logged as they are when [WithLogHeaders] names them, even though their
// names contain a word of the list (X-Request-Token, say). Authorization,
// Proxy-Authorization, Cookie and Set-Cookie are credentials by definition
// and stay redacted whatever is given here.
func WithRevealHeaders(names ...string) Option {
	return optionFunc(func(c *config) {
		for _, n := range names {
			c.logOpts.reveal = append(c.logOpts.reveal, strings.ToLower(n))
		}
	})
}

type logOptions struct {
	headers []string // canonical names to log
	redact  []string // extra lower-case words
	reveal  []string // lower-case names logged in clear despite a word
	idem    string   // lower-case name of the configured idempotency-key header
}

// credentialHeaders are never logged; secretWords hide a name containing
// one of them, except for the idempotency-key headers (ids, not secrets).
var (
	credentialHeaders = []string{"authorization", "proxy-authorization", "cookie", "set-cookie"}
	secretWords       = []string{"key", "token", "secret", "signature", "password"}
	idempotencyNames  = []string{"idempotency-key", "x-idempotency-key"}
)

const redacted = "[REDACTED]"

// isSecret reports whether the header name may hold a secret. The caller's
// words and names come first, then the built-in lists.
func (o *logOptions) isSecret(name string) bool {
	n := strings.ToLower(name)
	switch {
	case slices.Contains(credentialHeaders, n):
		return true
	case slices.Contains(o.reveal, n):
		return false
	case slices.ContainsFunc(o.redact, func(w string) bool { return strings.Contains(n, w) }):
		return true
	case n == o.idem || slices.Contains(idempotencyNames, n):
		return false
	}
	return slices.ContainsFunc(secretWords, func(w string) bool { return strings.Contains(n, w) })
}

// newObserver returns the observer of the stack: the user's observers and,
// with a logger, the one that writes the log; nil when there is neither.
func (c *config) newObserver() *observer {
	fns := slices.Clone(c.observers)
	var quiet func(context.Context) bool
	if c.logger != nil {
		l := &eventLogger{l: c.logger, o: c.logOpts}
		if c.idempotency != nil {
			l.o.idem = strings.ToLower(c.idempotency.header)
		}
		fns = append(fns, l.log)
		if len(c.observers) == 0 {
			// A logger that would drop even an error record needs no event.
			quiet = func(ctx context.Context) bool { return !l.l.Enabled(ctx, slog.LevelError) }
		}
	}
	return newObserver(fns, quiet)
}

type eventLogger struct {
	l *slog.Logger
	o logOptions
}

func (el *eventLogger) log(ctx context.Context, e Event) {
	level, msg := el.level(e)
	if !el.l.Enabled(ctx, level) {
		return
	}
	if e.Kind == EventBreaker {
		el.l.LogAttrs(ctx, level, msg, slog.String("breaker", e.BreakerKey),
			slog.String("from", e.From.String()), slog.String("to", e.To.String()))
		return
	}
	req := e.Request
	attrs := make([]slog.Attr, 0, 12)
	attrs = append(attrs, slog.String("method", req.Method), slog.String("url", safeURL(req.URL)))
	names, unnamed := queryNames(req.URL)
	if names != "" {
		attrs = append(attrs, slog.String("query_params", names))
	}
	if unnamed > 0 {
		attrs = append(attrs, slog.Int("query_unnamed", unnamed))
	}
	switch {
	case e.Kind == EventBudgetExhausted:
	case e.Err != nil:
		attrs = append(attrs, slog.String("error", safeError(e.Err, req.URL)))
	default:
		attrs = append(attrs, slog.Int("status", e.StatusCode))
	}
	attrs = append(attrs, slog.Int("attempt", e.Attempt), slog.Int("max_attempts", e.MaxAttempts), slog.Duration("duration", e.Duration))
	if e.WaitReason != "" {
		attrs = append(attrs, slog.Duration("retry_in", e.Wait), slog.String("retry_reason", e.WaitReason))
	}
	if e.Reason != "" {
		attrs = append(attrs, slog.String("reason", e.Reason)) // "hedge"
	}
	if e.Kind == EventAttempt && len(el.o.headers) > 0 {
		attrs = append(attrs, el.headers(req.Header))
	}
	el.l.LogAttrs(ctx, level, msg, attrs...)
}

func (el *eventLogger) level(e Event) (slog.Level, string) {
	switch {
	case e.Kind == EventBreaker && e.To == StateOpen:
		return slog.LevelWarn, "circuit breaker opened"
	case e.Kind == EventBreaker:
		return slog.LevelInfo, "circuit breaker " + e.To.String()
	case e.Kind == EventBudgetExhausted:
		return slog.LevelWarn, "retry budget exhausted"
	case e.Kind == EventAttempt && e.WaitReason != "":
		return slog.LevelWarn, "http attempt failed, retrying"
	case e.Kind == EventAttempt:
		return slog.LevelDebug, "http attempt"
	case e.Err != nil || e.StatusCode >= 500:
		return slog.LevelError, "http call failed"
	case e.StatusCode >= 400:
		return slog.LevelInfo, "http call"
	}
	return slog.LevelDebug, "http call"
}

func (el *eventLogger) headers(h http.Header) slog.Attr {
	var attrs []any
	for _, name := range el.o.headers {
		v, ok := h[name]
		if !ok {
			continue
		}
		val := strings.Join(v, ", ")
		if el.o.isSecret(name) {
			val = redacted
		}
		attrs = append(attrs, slog.String(name, val))
	}
	return slog.Group("headers", attrs...)
}
