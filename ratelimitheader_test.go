package resilient

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestRateLimitReset(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		kv   []string
		left int64
		want time.Duration
		ok   bool
	}{
		{"none", nil, 0, 0, false},
		{"IETF r=0", []string{"RateLimit", `"default";r=0;t=30`}, 0, 30 * time.Second, true},
		{"IETF quota left", []string{"RateLimit", `"default";r=1;t=30`}, 1, 30 * time.Second, true},
		{"IETF token name", []string{"RateLimit", `day;r=0;t=5`}, 0, 5 * time.Second, true},
		{"IETF quota: the least left", []string{"RateLimit", `"burst";r=3;t=1, "day";r=7;t=60`}, 3, time.Second, true},
		{"IETF two policies, the longest wait", []string{"RateLimit", `"burst";r=0;t=1, "day";r=0;t=3600`}, 0, time.Hour, true},
		{"IETF one used up of two", []string{"RateLimit", `"burst";r=3;t=1, "day";r=0;t=60`}, 0, time.Minute, true},
		{"IETF comma inside a quoted name", []string{"RateLimit", `"a,b";r=0;t=7`}, 0, 7 * time.Second, true},
		{"IETF no t: the policy's window", []string{"RateLimit", `"p";r=0`, "RateLimit-Policy", `"p";q=100;w=60`}, 0, time.Minute, true},
		{"IETF no t, no policy", []string{"RateLimit", `"p";r=0`}, 0, 0, false},
		{"IETF negative", []string{"RateLimit", `"p";r=-1;t=5`}, 0, 0, false},
		{"IETF decimal t", []string{"RateLimit", `"p";r=0;t=1.5`}, 0, 0, false},
		{"dictionary", []string{"RateLimit", `limit=100, remaining=0, reset=10`}, 0, 10 * time.Second, true},
		{"dictionary, quota left", []string{"RateLimit", `limit=100, remaining=9, reset=10`}, 9, 10 * time.Second, true},
		{"separate fields", []string{"RateLimit-Remaining", "0", "RateLimit-Reset", "12"}, 0, 12 * time.Second, true},
		{"X- delta", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "2"}, 0, 2 * time.Second, true},
		{"X- fraction", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "0.25"}, 0, 250 * time.Millisecond, true},
		{"X- epoch seconds", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000042"}, 0, 42 * time.Second, true},
		{"X- epoch milliseconds", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1700000001500"}, 0, 1500 * time.Millisecond, true},
		{"X- epoch in the past", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1600000000"}, 0, 0, true},
		{"X- quota left", []string{"X-RateLimit-Remaining", "10", "X-RateLimit-Reset", "2"}, 10, 2 * time.Second, true},
		{"X- no reset", []string{"X-RateLimit-Remaining", "0"}, 0, 0, false},
		{"X- garbage", []string{"X-RateLimit-Remaining", "zero", "X-RateLimit-Reset", "2"}, 0, 0, false},
		{"X- NaN reset", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "NaN"}, 0, 0, false},
		{"X- huge reset is capped", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "99999999"}, 0, maxThrottle, true},
		{"X- infinite reset", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "+Inf"}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.kv); i += 2 {
				h.Add(tt.kv[i], tt.kv[i+1])
			}
			left, got, ok := rateLimitQuota(h, now)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.left, left)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzRateLimitHeaders(f *testing.F) {
	f.Add(`"default";r=0;t=30`, `"default";q=100;w=60`, "0", "1700000042")
	f.Add(`limit=1, remaining=0, reset=5`, "", "0", "0.5")
	f.Add(`"a\"b,c";r=0`, `"a\"b,c";w=9`, "", "")
	f.Add(`;;,,=;"`, `"`, "-0", "1e300")
	f.Fuzz(func(t *testing.T, rl, policy, remaining, reset string) {
		now := time.Unix(1_700_000_000, 0)
		for _, h := range []http.Header{
			{"Ratelimit": {rl}, "Ratelimit-Policy": {policy}},
			{"Ratelimit-Remaining": {remaining}, "Ratelimit-Reset": {reset}},
			{"X-Ratelimit-Remaining": {remaining}, "X-Ratelimit-Reset": {reset}},
		} {
			left, d, ok := rateLimitQuota(h, now)
			if d < 0 || d > maxThrottle || left < 0 || (!ok && (d != 0 || left != 0)) {
				t.Fatalf("%v: %d, %v, %v", h, left, d, ok)
			}
		}
	})
}

// TestRateLimitQuotaSkipsUnusableFields: a field that is present but
// cannot be read does not hide the next one, and numbers are plain
// decimals: an underscore, an exponent, a sign or a hexadecimal form make
// a value unusable, not a different number.
func TestRateLimitQuotaSkipsUnusableFields(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		kv   []string
		left int64
		want time.Duration
		ok   bool
	}{
		{"unusable RateLimit, then X-", []string{"RateLimit", `"p";r=oops`, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "5"}, 0, 5 * time.Second, true},
		{"RateLimit without t nor policy, then separate fields", []string{"RateLimit", `"p";r=0`, "RateLimit-Remaining", "0", "RateLimit-Reset", "7"}, 0, 7 * time.Second, true},
		{"unusable separate fields, then X-", []string{"RateLimit-Remaining", "none", "RateLimit-Reset", "3", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "4"}, 0, 4 * time.Second, true},
		{"a usable RateLimit wins", []string{"RateLimit", `"p";r=2;t=9`, "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "5"}, 2, 9 * time.Second, true},
		{"underscore in a reset", []string{"RateLimit-Remaining", "0", "RateLimit-Reset", "1_0"}, 0, 0, false},
		{"underscore in a remaining", []string{"X-RateLimit-Remaining", "1_0", "X-RateLimit-Reset", "10"}, 0, 0, false},
		{"exponent", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1e30"}, 0, 0, false},
		{"small exponent", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1e1"}, 0, 0, false},
		{"hexadecimal", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "0x10"}, 0, 0, false},
		{"plus sign", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "+10"}, 0, 0, false},
		{"infinity", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "Inf"}, 0, 0, false},
		{"a dot alone", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "10."}, 0, 0, false},
		{"more than 15 digits", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1000000000000000000000000000000"}, 0, 0, false},
		{"a fraction stays", []string{"X-RateLimit-Remaining", "0", "X-RateLimit-Reset", " 2.5 "}, 0, 2500 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for i := 0; i+1 < len(tt.kv); i += 2 {
				h.Add(tt.kv[i], tt.kv[i+1])
			}
			left, got, ok := rateLimitQuota(h, now)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.left, left)
			assert.Equal(t, tt.want, got)
		})
	}
}
