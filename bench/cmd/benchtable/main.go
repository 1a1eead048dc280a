// Command benchtable runs every scenario of the benchmark suite for every
// stack and prints one markdown table, for README.md.
//
//	cd bench && go run ./cmd/benchtable
package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/resilient-go/resilient/bench"
)

func main() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()

	rows := []struct {
		name string
		cell func(s bench.Stack) string
	}{
		{"1. overhead, in-memory GET", perOp(bench.Overhead)},
		{"2. loopback keep-alive GET", perOp(func(s bench.Stack) func(*testing.B) { return bench.Loopback(s, srv.URL) })},
		{"3. 8 MiB PUT, replayable body", perOp(bench.Put8MiB)},
		{"4a. attempts per call, total outage", attempts(func(int64) bool { return true })},
		{"4b. attempts per call (success), 30 % failures", attempts(func(n int64) bool { return n%10 < 3 })},
		{"5. refusal by an open breaker", func(s bench.Stack) string {
			if !s.Breaker {
				return "no breaker"
			}
			return perOp(bench.OpenBreaker)(s)
		}},
		{"6. call answered `Retry-After: 3600`", func(s bench.Stack) string {
			took, err := bench.RetryAfter(s, 3*time.Second)
			if err != nil {
				return "≥ 3 s: " + err.Error()
			}
			return took.Round(time.Millisecond).String()
		}},
		{"7. 64 goroutines, one client", perOp(bench.Parallel)},
	}

	var b strings.Builder
	fmt.Fprintf(&b, "| scenario |")
	for _, s := range bench.Stacks {
		fmt.Fprintf(&b, " %s |", s.Name)
	}
	fmt.Fprintf(&b, "\n| --- |%s\n", strings.Repeat(" --- |", len(bench.Stacks)))
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s |", r.name)
		for _, s := range bench.Stacks {
			fmt.Fprintf(os.Stderr, "%s / %s\n", r.name, s.Name)
			fmt.Fprintf(&b, " %s |", r.cell(s))
		}
		b.WriteString("\n")
	}
	fmt.Printf("%d CPUs, %s, %s/%s, %s\n\n", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Now().Format("2006-01-02"))
	fmt.Print(b.String())
	fmt.Println("\nCells: ns/op · B/op · allocs/op, unless the row says otherwise.")
}

func perOp(f func(bench.Stack) func(*testing.B)) func(bench.Stack) string {
	return func(s bench.Stack) string {
		r := testing.Benchmark(f(s))
		if r.N == 0 {
			return "failed"
		}
		return fmt.Sprintf("%s ns · %s B · %d", group(r.NsPerOp()), group(r.AllocedBytesPerOp()), r.AllocsPerOp())
	}
}

func attempts(fail func(int64) bool) func(bench.Stack) string {
	return func(s bench.Stack) string {
		perCall, success := bench.Attempts(s, fail, 3*time.Second)
		return fmt.Sprintf("%.2f (%.0f %%)", perCall, success*100)
	}
}

// group writes n with thin spaces between thousands.
func group(n int64) string {
	s := fmt.Sprint(n)
	var out []string
	for len(s) > 3 {
		out = append([]string{s[len(s)-3:]}, out...)
		s = s[:len(s)-3]
	}
	return strings.Join(append([]string{s}, out...), " ")
}
