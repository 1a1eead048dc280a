package main

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"strings"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// figure collects, per stack, the figures of the scenarios the chart
// shows; the table rows fill it as they run.
type figure struct {
	stacks   []string // in table order
	outage   map[string]float64
	putBytes map[string]float64
	overhead map[string]float64 // ns
}

func newFigure(stacks []string) *figure {
	return &figure{stacks: stacks, outage: map[string]float64{}, putBytes: map[string]float64{}, overhead: map[string]float64{}}
}

var (
	ours   = color.RGBA{R: 0x1f, G: 0x6f, B: 0xb4, A: 0xff} // resilient
	peers  = color.RGBA{R: 0x9a, G: 0xa3, B: 0xad, A: 0xff}
	bare   = color.RGBA{R: 0xd5, G: 0xd9, B: 0xde, A: 0xff}
	ink    = color.RGBA{R: 0x24, G: 0x29, B: 0x2f, A: 0xff}
	sans   = font.Font{Typeface: "Liberation", Variant: "Sans"}
	bold   = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
	width  = 7.5 * vg.Inch
	height = 6.6 * vg.Inch
)

// write draws the three panels, one above the other, and saves them as
// an SVG file at path; caption says where the figures come from.
func (f *figure) write(path, caption string) error {
	panels := []struct {
		title       string
		vals        map[string]float64
		log         bool
		label, tick func(float64) string
	}{
		{"Attempts per call in a total outage (scenario 4a; fewer spare the server)", f.outage, false,
			func(v float64) string { return fmt.Sprintf("%.2f", v) }, func(v float64) string { return fmt.Sprintf("%g", v) }},
		{"Memory per 8 MiB PUT with a replayable body (scenario 3; B/op, log scale)", f.putBytes, true, bytesLabel, bytesLabel},
		{"Overhead: time per successful GET, in memory (scenario 1; ns/op)", f.overhead, false, nsLabel, nsTick},
	}
	plots := make([][]*plot.Plot, len(panels))
	for i, p := range panels {
		pl, err := f.panel(p.title, p.vals, p.log, p.label, p.tick)
		if err != nil {
			return err
		}
		plots[i] = []*plot.Plot{pl}
	}

	c := vgsvg.New(width, height)
	dc := draw.New(c)
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	head := draw.TextStyle{Color: ink, Font: font.From(sans, 9), Handler: plot.DefaultTextHandler, XAlign: draw.XCenter}
	dc.FillText(head, vg.Point{X: width / 2, Y: height - 14}, caption)
	tiles := draw.Tiles{Rows: len(plots), Cols: 1, PadTop: 22, PadBottom: 6, PadLeft: 6, PadRight: 14, PadY: 14}
	canvases := plot.Align(plots, tiles, dc)
	for i := range plots {
		plots[i][0].Draw(canvases[i][0])
	}

	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return err
	}
	// The fonts are not embedded (that would add 500 kB); name the
	// metric-compatible fallbacks, so that labels keep their room.
	svg := strings.ReplaceAll(buf.String(), "font-family:Liberation Sans;", "font-family:'Liberation Sans',Arimo,Arial,Helvetica,sans-serif;")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(svg), 0o644)
}

// panel is one horizontal bar chart: a bar per stack, bare on top,
// resilient in colour, each bar labelled with its value.
func (f *figure) panel(title string, vals map[string]float64, logScale bool, label, tick func(float64) string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(bold, 10)
	p.Title.TextStyle.Color = ink
	p.Title.Padding = 6
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Tick.Label.Font = font.From(sans, 9)
		a.Tick.Label.Color = ink
		a.Color = ink
		a.Tick.Color = ink
	}
	p.X.Padding, p.Y.Padding = 0, 10 // room for a wider fallback font

	n := len(f.stacks)
	names := make([]string, n)
	lo, hi := math.Inf(1), 0.0
	for i, s := range f.stacks {
		names[n-1-i] = s
		if v, ok := vals[s]; ok && v > 0 {
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
	}
	if hi == 0 {
		return nil, fmt.Errorf("benchtable: no figures for %q", title)
	}
	base := 0.0
	if logScale {
		// Bars start a decade below the decade of the least, so that it
		// shows as a bar too.
		base = math.Pow(10, math.Floor(math.Log10(lo))-1)
	}

	var xys plotter.XYs
	var texts []string
	for i, s := range f.stacks {
		v, ok := vals[s]
		if !ok {
			continue
		}
		y := float64(n - 1 - i)
		bar, err := plotter.NewBarChart(plotter.Values{v - base}, 13)
		if err != nil {
			return nil, err
		}
		bar.Horizontal, bar.XMin = true, y
		bar.LineStyle.Width = 0
		switch s {
		case "resilient":
			bar.Color = ours
		case "bare":
			bar.Color = bare
		default:
			bar.Color = peers
		}
		if base > 0 {
			// On a log scale a bar cannot start at 0: it stands on an
			// undrawn one of height base, so it spans base to v.
			under, err := plotter.NewBarChart(plotter.Values{base}, 13)
			if err != nil {
				return nil, err
			}
			under.Horizontal, under.XMin = true, y
			bar.StackOn(under)
		}
		p.Add(bar)
		xys = append(xys, plotter.XY{X: v, Y: y})
		texts = append(texts, label(v))
	}
	labels, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: texts})
	if err != nil {
		return nil, err
	}
	for i := range labels.TextStyle {
		labels.TextStyle[i].Font = font.From(sans, 9)
		labels.TextStyle[i].Color = ink
		labels.TextStyle[i].YAlign = draw.YCenter
	}
	labels.Offset = vg.Point{X: 4}
	p.Add(labels)

	// The range is set after the plotters, which widen it as they come.
	if logScale {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick { return decades(min, max, tick) })
		p.X.Min, p.X.Max = base, hi*12 // room for the labels
	} else {
		p.X.Min, p.X.Max = 0, hi*1.22
		p.X.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick { return linear(max/1.22, tick) })
	}
	p.NominalY(names...)
	p.Y.Tick.Label.Font = font.From(sans, 9)
	p.Y.Tick.Label.Color = ink
	return p, nil
}

// decades returns a tick per power of ten between min and max.
func decades(min, max float64, label func(float64) string) []plot.Tick {
	var ts []plot.Tick
	if min <= 0 || max <= min {
		return nil
	}
	for e := math.Ceil(math.Log10(min)); e <= math.Log10(max); e++ {
		ts = append(ts, plot.Tick{Value: math.Pow(10, e), Label: label(math.Pow(10, e))})
	}
	return ts
}

// linear returns about five round ticks from 0 to max.
func linear(max float64, label func(float64) string) []plot.Tick {
	if max <= 0 || math.IsInf(max, 0) || math.IsNaN(max) {
		return nil
	}
	step := math.Pow(10, math.Floor(math.Log10(max/4)))
	for _, m := range []float64{1, 2, 5, 10} {
		if max/(step*m) <= 5 {
			step *= m
			break
		}
	}
	var ts []plot.Tick
	for v := 0.0; v <= max*1.2; v += step {
		ts = append(ts, plot.Tick{Value: v, Label: label(v)})
	}
	return ts
}

// bytesLabel writes n bytes in decimal units: 840 B, 1.7 kB, 17.1 MB.
func bytesLabel(n float64) string {
	switch {
	case n >= 1e6:
		return trim(fmt.Sprintf("%.1f MB", n/1e6))
	case n >= 1e3:
		return trim(fmt.Sprintf("%.1f kB", n/1e3))
	}
	return fmt.Sprintf("%.0f B", n)
}

// nsLabel writes a duration in ns: 476 ns, 1.34 µs.
func nsLabel(ns float64) string {
	if ns >= 1e3 {
		return trim(fmt.Sprintf("%.2f µs", ns/1e3))
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// nsTick labels a tick of the ns axis: 0, 500 ns, 1 µs, 1.5 µs.
func nsTick(ns float64) string {
	switch {
	case ns == 0:
		return "0"
	case ns >= 1e3:
		return fmt.Sprintf("%g µs", ns/1e3)
	}
	return fmt.Sprintf("%g ns", ns)
}

// trim drops a zero fraction: "10.0 MB" is "10 MB".
func trim(s string) string {
	s = strings.Replace(s, ".00 ", " ", 1)
	return strings.Replace(s, ".0 ", " ", 1)
}
