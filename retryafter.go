package resilient

import (
	"math"
	"net/http"
	"time"
)

// maxRetryAfterSeconds bounds the delay-seconds form before it is turned into
// a Duration, so that a huge value cannot overflow; anything longer is
// reported as this long, which no sensible MaxRetryAfter allows.
const maxRetryAfterSeconds = math.MaxInt64 / int64(time.Second)

// parseRetryAfter reads a Retry-After header value (RFC 9110, section 10.2.3):
// either delay-seconds, strictly one or more ASCII digits, or an HTTP-date in
// any of the three forms http.ParseTime accepts (IMF-fixdate, RFC 850,
// asctime). A date in the past means no wait. ok is false when v is empty or
// malformed, which callers treat as "use the backoff".
func parseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = trimOWS(v)
	if v == "" {
		return 0, false
	}
	if isDigits(v) {
		var secs int64
		for i := 0; i < len(v); i++ {
			secs = secs*10 + int64(v[i]-'0')
			if secs > maxRetryAfterSeconds {
				return time.Duration(math.MaxInt64), true
			}
		}
		return time.Duration(secs) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(t.Sub(now), 0), true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// trimOWS removes the optional white space (SP and HTAB) around a field value.
func trimOWS(s string) string {
	for s != "" && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for s != "" && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}
