package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// go test -bench . runs the benchmark scenarios for every stack;
// go run ./cmd/benchtable runs them all and prints the table of docs/benchmarks.md.

func BenchmarkOverhead(b *testing.B) {
	for _, s := range Stacks {
		b.Run(s.Name, Overhead(s))
	}
}

func BenchmarkLoopback(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()
	for _, s := range Stacks {
		b.Run(s.Name, Loopback(s, srv.URL))
	}
}

func BenchmarkPut8MiB(b *testing.B) {
	for _, s := range Stacks {
		b.Run(s.Name, Put8MiB(s))
	}
}

func BenchmarkOpenBreaker(b *testing.B) {
	for _, s := range Stacks {
		if s.Breaker {
			b.Run(s.Name, OpenBreaker(s))
		}
	}
}

func BenchmarkParallel(b *testing.B) {
	for _, s := range Stacks {
		b.Run(s.Name, Parallel(s))
	}
}

// TestAttempts is a short run of scenario 4, to keep it compiling and sane.
func TestAttempts(t *testing.T) {
	if testing.Short() {
		t.Skip("takes seconds")
	}
	for _, s := range Stacks[1:2] {
		perCall, _ := Attempts(s, func(int64) bool { return true }, 1500*time.Millisecond)
		t.Logf("%s: %.2f attempts per call under a total outage", s.Name, perCall)
	}
}
