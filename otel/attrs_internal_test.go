package resilientotel

import (
	"net/http"
	"net/url"
	"testing"
)

// TestSetCacheBound: past its size the cache keeps nothing more but still
// returns the right sets.
func TestSetCacheBound(t *testing.T) {
	c := &setCache{size: 2}
	req := &http.Request{Method: "GET", URL: &url.URL{Scheme: "https", Host: "a.example"}}
	for i, status := range []int{200, 503, 404, 200, 404} {
		p := pointOf(req, status, nil, 0)
		got, want := c.get(p), c.get(p)
		if !got.Equals(&want) || got.Len() != len(p.attrs()) {
			t.Errorf("step %d: set %v, want the attributes %v", i, got.ToSlice(), p.attrs())
		}
		if v, _ := got.Value("http.response.status_code"); v.AsInt64() != int64(status) {
			t.Errorf("step %d: status %v, want %d", i, v, status)
		}
	}
	n := 0
	c.m.Range(func(any, any) bool { n++; return true })
	if n != 2 || c.n.Load() != 2 {
		t.Errorf("kept %d sets (counted %d), want 2", n, c.n.Load())
	}
}
