package resilient

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLogQueryNamesOnlyOfPairs checks that only the names of name=value
// parts are listed; a bare token, which may be the secret itself, is
// counted.
func TestLogQueryNamesOnlyOfPairs(t *testing.T) {
	for _, tt := range []struct {
		query   string
		names   string
		unnamed int
	}{
		{"", "", 0},
		{"sk_live_SECRET", "", 1},
		{"page=2&sk_live_SECRET&cvc=1", "cvc,page", 1},
		{"a=1;sk_live_SECRET;b=2", "a,b", 1},
		{"=orphan-value", "", 1},
		{"a=1&a=2&debug=", "a,debug", 0},
		{"api%5Fkey=1&two+words=x", "api_key,two words", 0},
		{"&&;", "", 0},
		{"bad%zzname=1", "bad%zzname", 0},
	} {
		t.Run(tt.query, func(t *testing.T) {
			names, unnamed := queryNames(&url.URL{RawQuery: tt.query})
			assert.Equal(t, tt.names, names)
			assert.Equal(t, tt.unnamed, unnamed)
			assert.NotContains(t, names, "SECRET")
		})
	}
}

// secretURL holds a secret in every part that may carry one.
const secretURL = "https://apiuser_42:hunter2pw@api.example/v1/pay?token=sk_live_SECRET123&sk_bare_TOKEN99&page=2#access_token=frag_SECRET_777"

var urlSecrets = []string{"apiuser_42", "hunter2pw", "sk_live_SECRET123", "sk_bare_TOKEN99", "frag_SECRET_777", "access_token"}

// TestLogErrorScrubsEveryURLForm feeds safeError the texts that real
// errors hold: *url.Error (which quotes with %q), net/http's masked form,
// fmt %q and %s, escaped forms, parts of the URL on their own.
func TestLogErrorScrubsEveryURLForm(t *testing.T) {
	u, err := url.Parse(secretURL)
	require.NoError(t, err)
	// net/http's Client masks the password this way (stripPassword).
	masked := strings.Replace(u.String(), u.User.String()+"@", u.User.Username()+":***@", 1)
	noFrag := *u
	noFrag.Fragment = ""
	//lint:ignore SA1007 invalid on purpose: the parse error quotes the whole URL
	_, parseErr := url.Parse(secretURL + "%zz")
	require.Error(t, parseErr)
	cause := errors.New("connection reset by peer")
	for _, tt := range []struct {
		name string
		err  error
	}{
		{"url.Error", &url.Error{Op: "Get", URL: u.String(), Err: cause}},
		{"url.Error, net/http masked password", &url.Error{Op: "Post", URL: masked, Err: cause}},
		{"url.Error, Redacted", &url.Error{Op: "Get", URL: u.Redacted(), Err: cause}},
		{"url.Error, no fragment", &url.Error{Op: "Get", URL: noFrag.String(), Err: cause}},
		{"url.Parse error", parseErr},
		{"%q", fmt.Errorf("fetching %q: %w", u.String(), cause)},
		{"%s", fmt.Errorf("fetching %s: %w", u, cause)},
		{"%q of url.URL", fmt.Errorf("fetching %q", u)},
		{"path-escaped", fmt.Errorf("proxy /fetch/%s failed", url.PathEscape(u.String()))},
		{"query-escaped", fmt.Errorf("callback=%s failed", url.QueryEscape(u.String()))},
		{"raw query", fmt.Errorf("bad query %s", u.RawQuery)},
		{"decoded query", fmt.Errorf("bad query %v", u.Query())},
		{"one value", fmt.Errorf("token %q revoked", "sk_live_SECRET123")},
		{"bare token", fmt.Errorf("unknown parameter sk_bare_TOKEN99")},
		{"fragment", fmt.Errorf("fragment %s", u.Fragment)},
		{"userinfo", fmt.Errorf("user %s", u.User)},
		{"password", fmt.Errorf("password %q rejected", "hunter2pw")},
		{"wrapped twice", fmt.Errorf("outer: %w", &url.Error{Op: "Get", URL: u.String(), Err: fmt.Errorf("inner %q", u.String())})},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := safeError(tt.err, u)
			for _, s := range urlSecrets {
				assert.NotContains(t, got, s)
			}
			assert.NotContains(t, got, "***")
			assert.NotContains(t, got, "xxxxx")
		})
	}
	got := safeError(&url.Error{Op: "Get", URL: u.String(), Err: cause}, u)
	assert.Equal(t, `Get "https://api.example/v1/pay": connection reset by peer`, got, "the URL's safe form stays")
}

// TestLogErrorScrubsNetHTTPError scrubs the error of a real failed call.
func TestLogErrorScrubsNetHTTPError(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close() // every call is refused
	raw := strings.Replace(secretURL, "https://", "http://", 1)
	raw = strings.Replace(raw, "api.example", addr, 1)
	req, err := http.NewRequest("GET", raw, nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.Error(t, err)
	got := safeError(err, req.URL)
	for _, s := range urlSecrets {
		assert.NotContains(t, got, s)
	}
	assert.Contains(t, got, `"http://`+addr+`/v1/pay"`, "the URL is whole, in its safe form")
}

// TestLogRecordsNoBareTokenNorFragment checks the records themselves.
func TestLogRecordsNoBareTokenNorFragment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			return nil, &url.Error{Op: r.Method, URL: r.URL.String(), Err: errors.New("boom")}
		})
		c := &http.Client{Transport: NewTransport(base, WithLogger(logger), WithRetry(RetryPolicy{MaxAttempts: 2}))}
		_, err := c.Get(secretURL)
		require.Error(t, err)
		out := buf.String()
		for _, s := range urlSecrets {
			assert.NotContains(t, out, s)
		}
		recs := records(t, &buf)
		require.NotEmpty(t, recs)
		for _, r := range recs {
			assert.Equal(t, "https://api.example/v1/pay", r["url"])
			assert.Equal(t, "page,token", r["query_params"])
			assert.EqualValues(t, 1, r["query_unnamed"])
			assert.Contains(t, r["error"], "boom")
		}
	})
}
