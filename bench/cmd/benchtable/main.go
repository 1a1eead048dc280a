// Command benchtable runs every scenario of the benchmark suite for every
// stack and prints one markdown table, for docs/benchmarks.md. It also draws the
// scenarios a reader looks at first (attempts per call in an outage, memory
// of an 8 MiB PUT, overhead) side by side in an SVG chart, by default
// ../docs/bench.svg, the one the README shows.
//
//	cd bench && go run ./cmd/benchtable [-svg path]
//
// An empty -svg draws no chart.
package main

import (
	"flag"
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

var svgPath = flag.String("svg", "../docs/bench.svg", "write the chart of scenarios 1, 3 and 4a to this SVG file; empty: no chart")

func main() {
	flag.Parse()
	names := make([]string, len(bench.Stacks))
	for i, s := range bench.Stacks {
		names[i] = s.Name
	}
	fig := newFigure(names)
	ns := func(into map[string]float64) func(string, testing.BenchmarkResult) {
		return func(name string, r testing.BenchmarkResult) { into[name] = float64(r.NsPerOp()) }
	}
	allocBytes := func(into map[string]float64) func(string, testing.BenchmarkResult) {
		return func(name string, r testing.BenchmarkResult) { into[name] = float64(r.AllocedBytesPerOp()) }
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	defer srv.Close()

	rows := []struct {
		name string
		cell func(s bench.Stack) string
	}{
		{"1. overhead, in-memory GET", perOp(bench.Overhead, ns(fig.overhead))},
		{"2. loopback keep-alive GET", perOp(func(s bench.Stack) func(*testing.B) { return bench.Loopback(s, srv.URL) }, nil)},
		{"3. 8 MiB PUT, replayable body", perOp(bench.Put8MiB, allocBytes(fig.putBytes))},
		{"4a. attempts per call, total outage", attempts(func(int64) bool { return true }, fig.outage)},
		{"4b. attempts per call (success), 30 % failures", attempts(func(n int64) bool { return n%10 < 3 }, nil)},
		{"5. refusal by an open breaker", func(s bench.Stack) string {
			if !s.Breaker {
				return "no breaker"
			}
			return perOp(bench.OpenBreaker, nil)(s)
		}},
		{"6. call answered `Retry-After: 3600`", func(s bench.Stack) string {
			took, err := bench.RetryAfter(s, 3*time.Second)
			if err != nil {
				return "≥ 3 s: " + err.Error()
			}
			return took.Round(time.Millisecond).String()
		}},
		{"7. 64 goroutines, one client", perOp(bench.Parallel, nil)},
		{"8. 5 % of requests take 1 s: p50 · p99 · extra requests (hedging)", func(s bench.Stack) string {
			r := bench.Hedging(bench.Hedged(s), 8, 3*time.Second)
			return fmt.Sprintf("%v · %v · +%.1f %%", r.P50.Round(10*time.Microsecond), r.P99.Round(10*time.Microsecond), 100*r.Extra())
		}},
		{"9a. 50 req/s allowed, 64 goroutines × 5 s: 429s (after 1 s) · 200s/s", throttle(false)},
		{"9b. same, server also sends `RateLimit` fields", throttle(true)},
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
	machine := fmt.Sprintf("%d CPUs, %s, %s/%s, %s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, time.Now().Format("2006-01-02"))
	fmt.Printf("%s\n\n", machine)
	fmt.Print(b.String())
	fmt.Println("\nCells: ns/op · B/op · allocs/op, unless the row says otherwise.")
	if *svgPath != "" {
		if err := fig.write(*svgPath, machine+" · cd bench && go run ./cmd/benchtable"); err != nil {
			fmt.Fprintln(os.Stderr, "chart:", err)
			os.Exit(1)
		}
		fmt.Fprintf(os.Stderr, "wrote %s\n", *svgPath)
	}
}

// perOp runs a benchmark per stack and formats its cell; rec, when not
// nil, gets each result for the chart.
func perOp(f func(bench.Stack) func(*testing.B), rec func(stack string, r testing.BenchmarkResult)) func(bench.Stack) string {
	return func(s bench.Stack) string {
		r := testing.Benchmark(f(s))
		if r.N == 0 {
			return "failed"
		}
		if rec != nil {
			rec(s.Name, r)
		}
		return fmt.Sprintf("%s ns · %s B · %d", group(r.NsPerOp()), group(r.AllocedBytesPerOp()), r.AllocsPerOp())
	}
}

// attempts runs scenario 4 per stack; into, when not nil, gets the
// attempts per call for the chart.
func attempts(fail func(int64) bool, into map[string]float64) func(bench.Stack) string {
	return func(s bench.Stack) string {
		perCall, success := bench.Attempts(s, fail, 3*time.Second)
		if into != nil {
			into[s.Name] = perCall
		}
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

func throttle(headers bool) func(bench.Stack) string {
	return func(s bench.Stack) string {
		r := bench.Throttle(s, 50, 64, 5*time.Second, headers)
		return fmt.Sprintf("%d (%d) · %.1f/s", r.Throttled, r.Late, r.PerSecond)
	}
}
