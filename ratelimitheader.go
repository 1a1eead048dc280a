package resilient

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxThrottle bounds how long one answer can close a gate, whatever the
// server says, so that a wrong header cannot shut a host out for good.
const maxThrottle = 24 * time.Hour

// rateLimitQuota reads the rate limit fields of a response: how many
// requests are left (left) until the quota resets (after reset). It
// understands, in this order:
//
//   - the IETF RateLimit field (draft-ietf-httpapi-ratelimit-headers): a
//     list of policies such as `"default";r=0;t=30`, where r is the
//     remaining quota and t the seconds until it resets (when t is absent,
//     the window w of the same policy in RateLimit-Policy is used); of
//     several policies, the one with the least left counts, and of those
//     used up, the one that resets last; and the older dictionary form
//     `limit=100, remaining=0, reset=30`;
//   - the older separate RateLimit-Remaining and RateLimit-Reset fields;
//   - the common X-RateLimit-Remaining and X-RateLimit-Reset pair, where the
//     reset is seconds from now or, for values past 10^8 (three years, too
//     long to be meant as a wait), a Unix time in seconds (GitHub) or,
//     past 10^11, in milliseconds.
//
// The first of these that can be read counts: a field that is present but
// malformed does not hide the next. ok is false when none can be read.
// Numbers are plain decimals (digits, and for the separate fields an
// optional fraction): no sign, exponent, underscore or hexadecimal form.
// The reset is at most maxThrottle. A zero now means the time when a Unix
// time is read.
func rateLimitQuota(h http.Header, now time.Time) (left int64, reset time.Duration, ok bool) {
	if v, found := h["Ratelimit"]; found {
		if left, reset, ok = parseRateLimit(strings.Join(v, ","), h["Ratelimit-Policy"]); ok {
			return left, reset, true
		}
	}
	if v, found := h["Ratelimit-Remaining"]; found && len(v) > 0 {
		if left, reset, ok = remainingReset(v[0], h.Get("Ratelimit-Reset"), now, false); ok {
			return left, reset, true
		}
	}
	if v, found := h["X-Ratelimit-Remaining"]; found && len(v) > 0 {
		return remainingReset(v[0], h.Get("X-Ratelimit-Reset"), now, true)
	}
	return 0, 0, false
}

// rlPolicy is one member of a RateLimit or RateLimit-Policy field: its
// name and its integer parameters (-1 when absent).
type rlPolicy struct {
	name      string
	r, t, w   int64
	legacyRem int64 // dictionary form: remaining
	legacyRst int64 // dictionary form: reset
}

// parseRateLimit reads a RateLimit field value; policies are the
// RateLimit-Policy field lines, for the window of a policy without t.
func parseRateLimit(v string, policies []string) (left int64, reset time.Duration, ok bool) {
	left, wait := int64(-1), int64(-1)
	consider := func(r, t int64) {
		switch {
		case r < 0 || t < 0:
		case left < 0 || r < left:
			left, wait = r, t
		case r == left:
			wait = max(wait, t)
		}
	}
	legacyRem, legacyRst := int64(-1), int64(-1)
	for _, m := range parseRLMembers(v) {
		if m.legacyRem >= 0 {
			legacyRem = m.legacyRem
		}
		if m.legacyRst >= 0 {
			legacyRst = m.legacyRst
		}
		t := m.t
		if t < 0 && m.r >= 0 {
			t = policyWindow(policies, m.name)
		}
		consider(m.r, t)
	}
	consider(legacyRem, legacyRst)
	if left < 0 {
		return 0, 0, false
	}
	return left, seconds(float64(wait)), true
}

// policyWindow returns the window w of the named policy in the
// RateLimit-Policy lines, or -1.
func policyWindow(lines []string, name string) int64 {
	for _, p := range parseRLMembers(strings.Join(lines, ",")) {
		if p.name == name && p.w >= 0 {
			return p.w
		}
	}
	return -1
}

// parseRLMembers splits a structured field list (RFC 9651) into its
// members, leniently: a member that cannot be read is skipped. Commas and
// semicolons inside quoted strings are kept.
func parseRLMembers(v string) []rlPolicy {
	var out []rlPolicy
	for _, raw := range splitQuoted(v, ',') {
		parts := splitQuoted(raw, ';')
		m := rlPolicy{r: -1, t: -1, w: -1, legacyRem: -1, legacyRst: -1}
		head := trimOWS(parts[0])
		if k, val, ok := strings.Cut(head, "="); ok && !strings.HasPrefix(head, `"`) {
			// The dictionary form: limit=100, remaining=0, reset=30.
			n := sfInteger(val)
			switch strings.ToLower(trimOWS(k)) {
			case "remaining":
				m.legacyRem = n
			case "reset":
				m.legacyRst = n
			}
			out = append(out, m)
			continue
		}
		m.name = strings.Trim(head, `"`)
		for _, p := range parts[1:] {
			k, val, _ := strings.Cut(trimOWS(p), "=")
			switch n := sfInteger(val); k {
			case "r":
				m.r = n
			case "t":
				m.t = n
			case "w":
				m.w = n
			}
		}
		out = append(out, m)
	}
	return out
}

// splitQuoted splits s at sep, except inside double quotes (with
// backslash escapes). It always returns at least one part.
func splitQuoted(s string, sep byte) []string {
	var (
		parts   []string
		start   int
		quoted  bool
		escaped bool
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// sfInteger reads a non-negative integer of at most 15 digits (an RFC
// 9651 integer), or returns -1.
func sfInteger(v string) int64 {
	v = trimOWS(v)
	if !isDigits(v) || len(v) > 15 {
		return -1
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1
	}
	return n
}

// remainingReset reads a remaining count and a reset value: seconds from
// now or, when epoch is set and the value is large, a Unix time.
func remainingReset(remaining, reset string, now time.Time, epoch bool) (int64, time.Duration, bool) {
	rem, ok := plainDecimal(remaining)
	if !ok {
		return 0, 0, false
	}
	r, ok := plainDecimal(reset)
	if !ok {
		return 0, 0, false
	}
	left := int64(min(rem, 1e15))
	if epoch && r >= 1e8 && now.IsZero() {
		now = time.Now()
	}
	switch {
	case epoch && r >= 1e11:
		return left, min(max(time.UnixMilli(int64(min(r, 1e15))).Sub(now), 0), maxThrottle), true
	case epoch && r >= 1e8:
		return left, min(max(time.Unix(int64(min(r, 1e12)), 0).Sub(now), 0), maxThrottle), true
	}
	return left, seconds(r), true
}

// plainDecimal reads a non-negative decimal number: at most 15 digits,
// then optionally a dot and at most 9 digits. Anything else (a sign, an
// exponent, an underscore, a hexadecimal form, a longer number) is not a
// count or a reset a server means, and ok is false.
func plainDecimal(v string) (float64, bool) {
	v = trimOWS(v)
	whole, frac, dot := strings.Cut(v, ".")
	if !isDigits(whole) || len(whole) > 15 || dot && (!isDigits(frac) || len(frac) > 9) {
		return 0, false
	}
	n, err := strconv.ParseFloat(v, 64)
	return n, err == nil
}

// seconds turns a non-negative number of seconds into a Duration of at
// most maxThrottle.
func seconds(s float64) time.Duration {
	if !(s < maxThrottle.Seconds()) {
		return maxThrottle
	}
	return time.Duration(s * float64(time.Second))
}
