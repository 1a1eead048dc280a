package pgstore

import (
	"errors"
	"strings"
	"testing"
)

func TestParseTable(t *testing.T) {
	for _, tc := range []struct {
		name, want string
	}{
		{"webhook_events", `"webhook_events"`},
		{"_x9", `"_x9"`},
		{"Events", `"Events"`},
		{"hooks.events", `"hooks"."events"`},
		{strings.Repeat("a", 63), `"` + strings.Repeat("a", 63) + `"`},
		{"", ""},
		{"9lives", ""},
		{"a-b", ""},
		{`a"b`, ""},
		{"a.b.c", ""},
		{"a..b", ""},
		{"événements", ""},
		{strings.Repeat("a", 64), ""},
		{"x; DROP TABLE y", ""},
	} {
		got, err := parseTable(tc.name)
		if tc.want == "" {
			if !errors.Is(err, ErrInvalidTable) {
				t.Errorf("parseTable(%q) = %q, %v; want ErrInvalidTable", tc.name, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseTable(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// FuzzParseTable: a name is accepted only if it is one or two plain
// identifiers, and then comes back quoted, with nothing that could end the
// quoting.
func FuzzParseTable(f *testing.F) {
	for _, s := range []string{"webhook_events", "a.b", `a"."b`, "a\x00b", "a.b.c", "_", "Z9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := parseTable(name)
		if err != nil {
			if !errors.Is(err, ErrInvalidTable) {
				t.Fatalf("parseTable(%q): %v, want ErrInvalidTable", name, err)
			}
			return
		}
		parts := strings.Split(name, ".")
		if len(parts) > 2 {
			t.Fatalf("parseTable(%q) accepted %d parts", name, len(parts))
		}
		var quoted []string
		for _, p := range parts {
			if p == "" || len(p) > maxIdentifier || strings.ContainsFunc(p, func(r rune) bool {
				return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
			}) || p[0] >= '0' && p[0] <= '9' {
				t.Fatalf("parseTable(%q) accepted %q", name, p)
			}
			quoted = append(quoted, `"`+p+`"`)
		}
		if want := strings.Join(quoted, "."); got != want {
			t.Fatalf("parseTable(%q) = %q, want %q", name, got, want)
		}
	})
}
