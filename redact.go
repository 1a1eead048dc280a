package resilient

import (
	"cmp"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// minScrub is the shortest query value, bare query token, fragment or user
// name that is cut out of an error text on its own: a shorter one would cut
// unrelated text (a port, a digit) and is no credible secret. The query,
// the password and the URL as a whole are cut out at any length.
const minScrub = 6

// safeURL is scheme://host/path: no userinfo, no query, no fragment.
func safeURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// queryNames lists the names of the query's name=value parts, unescaped,
// sorted and without duplicates, never their values. A part with no "="
// or an empty name (?sk_live_123) may be a secret itself: it is only
// counted, in unnamed. Parts are split at "&" and at ";", which some
// servers also take as a separator.
func queryNames(u *url.URL) (names string, unnamed int) {
	if u == nil || u.RawQuery == "" {
		return "", 0
	}
	var list []string
	for part := range strings.FieldsFuncSeq(u.RawQuery, isQuerySep) {
		name, _, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			unnamed++
			continue
		}
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		list = append(list, name)
	}
	slices.Sort(list)
	return strings.Join(slices.Compact(list), ","), unnamed
}

// isQuerySep reports whether r separates query parts.
func isQuerySep(r rune) bool { return r == '&' || r == ';' }

// safeError is err's text with u scrubbed out, in case a transport put the
// URL, or a part of it, in its message: see [urlScrubber].
func safeError(err error, u *url.URL) string {
	s := err.Error()
	if u == nil {
		return s
	}
	return urlScrubber(u).Replace(s)
}

// urlScrubber returns a Replacer that turns every form of u the standard
// library prints into [safeURL]: url.String, url.Redacted and net/http's
// "user:***@" form, each with or without the userinfo and the fragment, as
// they are, %q-quoted, path- or query-escaped. It then cuts out what is left
// of the secrets, in the same four encodings: the raw and decoded query,
// its values and bare tokens, the fragment, the userinfo and the password.
func urlScrubber(u *url.URL) *strings.Replacer {
	type pair struct{ old, new string }
	var pairs []pair
	add := func(needle, repl string, minLen int) {
		if len(needle) < max(minLen, 1) {
			return
		}
		q := strconv.Quote(needle)
		for _, n := range []string{needle, q[1 : len(q)-1], url.PathEscape(needle), url.QueryEscape(needle)} {
			pairs = append(pairs, pair{n, repl})
		}
	}

	// The userinfo as printed: as it is, masked by net/http's Client
	// ("user:***@") and by url.Redacted ("user:xxxxx@"), or the name alone.
	var userForms []string
	if u.User != nil {
		name := url.User(u.User.Username()).String()
		userForms = []string{u.User.String() + "@", name + ":***@", name + ":xxxxx@", name + "@"}
	}
	safe := safeURL(u)
	for _, frag := range []bool{true, false} {
		v := *u
		v.User = nil
		if !frag {
			v.Fragment, v.RawFragment = "", ""
		}
		plain := v.String()
		add(plain, safe, 0)
		if prefix := v.Scheme + "://"; strings.HasPrefix(plain, prefix) {
			for _, uf := range userForms {
				add(prefix+uf+plain[len(prefix):], safe, 0)
			}
		}
	}

	if u.RawQuery != "" {
		add("?"+u.RawQuery, "?"+redacted, 0)
		add(u.RawQuery, redacted, 0)
		if q, err := url.QueryUnescape(u.RawQuery); err == nil {
			add(q, redacted, 0)
		}
		for part := range strings.FieldsFuncSeq(u.RawQuery, isQuerySep) {
			_, val, ok := strings.Cut(part, "=")
			if !ok {
				val = part // a bare token
			}
			add(val, redacted, minScrub)
			if v, err := url.QueryUnescape(val); err == nil {
				add(v, redacted, minScrub)
			}
		}
	}
	if u.Fragment != "" {
		for _, f := range []string{u.EscapedFragment(), u.Fragment} {
			add("#"+f, "", 0)
			add(f, redacted, minScrub)
		}
	}
	for _, uf := range userForms {
		add(uf, "", 0)
	}
	if u.User != nil {
		add(u.User.String(), redacted, 0)
		if p, ok := u.User.Password(); ok {
			add(p, redacted, 0)
		}
		add(u.User.Username(), redacted, minScrub)
	}

	// At each position of the text the longest needle wins: a whole URL
	// before its query, a query before one of its values.
	slices.SortStableFunc(pairs, func(a, b pair) int { return cmp.Compare(len(b.old), len(a.old)) })
	oldnew := make([]string, 0, 2*len(pairs))
	for _, p := range pairs {
		oldnew = append(oldnew, p.old, p.new)
	}
	return strings.NewReplacer(oldnew...)
}
