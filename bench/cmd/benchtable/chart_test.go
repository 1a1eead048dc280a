package main

import (
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sample holds figures of the README's table, to draw without running
// the benchmarks.
func sample() *figure {
	f := newFigure([]string{"bare", "resilient", "go-retryablehttp", "failsafe-go", "resty"})
	for i, s := range f.stacks {
		f.outage[s] = []float64{1, 1.2, 3, 3, 3}[i]
		f.putBytes[s] = []float64{1065, 1705, 17071034, 17070461, 16782948}[i]
		f.overhead[s] = []float64{476, 1339, 1905, 1835, 4258}[i]
	}
	return f
}

// TestChart draws the chart and checks it is well-formed SVG with the
// three panels and every stack in it.
func TestChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "docs", "bench.svg")
	if err := sample().write(path, "2 CPUs, go1.26.8, linux/amd64"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(strings.NewReader(string(b)))
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
	}
	for _, want := range []string{"<svg", "Attempts per call", "8 MiB PUT", "successful GET",
		"go-retryablehttp", "failsafe-go", "resty", "17.1 MB", "1.34 µs", "1.20", "Arial"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("the chart has no %q", want)
		}
	}
}

// TestChartNoFigures: a panel without figures is an error, not a panic.
func TestChartNoFigures(t *testing.T) {
	f := newFigure([]string{"bare"})
	if err := f.write(filepath.Join(t.TempDir(), "x.svg"), ""); err == nil {
		t.Error("no error for an empty figure")
	}
}
