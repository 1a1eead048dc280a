package resilient

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"empty", "", 0, false},
		{"zero seconds", "0", 0, true},
		{"seconds", "3", 3 * time.Second, true},
		{"seconds with OWS", " 7\t", 7 * time.Second, true},
		{"leading zeros", "007", 7 * time.Second, true},
		{"huge seconds saturate", "99999999999999999999999999", time.Duration(math.MaxInt64), true},
		{"negative", "-1", 0, false},
		{"plus sign", "+5", 0, false},
		{"fraction", "1.5", 0, false},
		{"hex", "0x10", 0, false},
		{"words", "soon", 0, false},
		{"inner space", "1 0", 0, false},
		{"IMF-fixdate", "Sat, 28 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"RFC 850", "Saturday, 28-Nov-26 12:01:00 GMT", time.Minute, true},
		{"asctime", "Sat Nov 28 12:00:05 2026", 5 * time.Second, true},
		{"past date", "Sat, 28 Nov 2026 11:00:00 GMT", 0, true},
		{"bad date", "Sat, 31 Feb 2026 12:00:00 GMT", 0, false},
		{"date in other zone", "Sat, 28 Nov 2026 12:00:30 PST", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseRetryAfter(tt.in, now)
			assert.Equal(t, tt.wantOK, ok)
			assert.Equal(t, tt.want, got)
		})
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"", "0", "120", "99999999999999999999", "Sat, 28 Nov 2026 12:00:30 GMT",
		"Saturday, 28-Nov-26 12:01:00 GMT", "Sat Nov 28 12:00:05 2026", "-1", " 5 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseRetryAfter(s, now)
		if d < 0 {
			t.Fatalf("negative wait %v for %q", d, s)
		}
		if !ok && d != 0 {
			t.Fatalf("wait %v with ok=false for %q", d, s)
		}
		if ok && isDigits(trimOWS(s)) {
			return
		}
		if ok {
			if _, err := http.ParseTime(trimOWS(s)); err != nil {
				t.Fatalf("accepted %q, which is neither digits nor an HTTP-date", s)
			}
		}
	})
}
