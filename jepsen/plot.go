package jepsen

import (
	"bytes"
	"fmt"
	"html"
	"math"
	"sort"

	"powermail/jepsen/check"
)

// LatencySVG draws every completed client operation of h as a point (x:
// when it was invoked, y: how long it took, log scale), one panel per
// operation, coloured by outcome (ok green, fail red, info orange), with
// the fault windows shaded across all panels (darker while the fault
// held, lighter until the cluster was whole again). It is plain SVG
// written by hand, so any browser shows it.
func LatencySVG(h check.History, windows []FaultWindow) []byte {
	calls, err := check.Pair(h)
	if err != nil {
		return errorSVG(err)
	}
	type pt struct {
		t, lat float64 // seconds
		typ    check.OpType
	}
	panels := map[string][]pt{}
	var end float64
	for _, c := range calls {
		if c.Invoke.Process < 0 || c.Pending {
			continue
		}
		p := pt{t: float64(c.Start()) / 1e9, lat: float64(c.End()-c.Start()) / 1e9, typ: c.Type()}
		panels[c.Invoke.F] = append(panels[c.Invoke.F], p)
		end = math.Max(end, float64(c.End())/1e9)
	}
	for _, w := range windows {
		end = math.Max(end, float64(max(w.End, w.Recovered))/1e9)
	}
	end = math.Max(end, 1)
	names := make([]string, 0, len(panels))
	for f := range panels {
		names = append(names, f)
	}
	sort.Strings(names)

	const (
		width, left, right, top = 1200.0, 90.0, 20.0, 60.0
		panelH, gap             = 130.0, 24.0
		minLat, maxLat          = 1e-3, 30.0 // 1 ms .. 30 s
	)
	plotW := width - left - right
	height := top + float64(len(names))*(panelH+gap) + 40
	x := func(t float64) float64 { return left + t/end*plotW }
	y := func(panel int, lat float64) float64 {
		lat = math.Min(math.Max(lat, minLat), maxLat)
		frac := (math.Log10(lat) - math.Log10(minLat)) / (math.Log10(maxLat) - math.Log10(minLat))
		return top + float64(panel)*(panelH+gap) + panelH*(1-frac)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">Operation latency over time (log scale); shaded: faults</text>`+"\n", left)
	legend := []struct{ label, color string }{{"ok", okColor}, {"fail", failColor}, {"info", infoColor}}
	for i, l := range legend {
		fmt.Fprintf(&b, `<circle cx="%.0f" cy="34" r="4" fill="%s"/><text x="%.0f" y="38">%s</text>`+"\n",
			left+float64(i)*60, l.color, left+float64(i)*60+8, l.label)
	}
	bottom := top + float64(len(names))*(panelH+gap) - gap
	// Fault windows under the points.
	for i, w := range windows {
		color := faultColors[w.Kind]
		if color == "" {
			color = "#888888"
		}
		x0, x1 := x(float64(w.Start)/1e9), x(float64(w.End)/1e9)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s" fill-opacity="0.22"><title>%s</title></rect>`+"\n",
			x0, top, math.Max(x1-x0, 1), bottom-top, color, html.EscapeString(describeWindow(w)))
		if w.Recovered > w.End {
			x2 := x(float64(w.Recovered) / 1e9)
			fmt.Fprintf(&b, `<rect x="%.1f" y="%.0f" width="%.1f" height="%.0f" fill="%s" fill-opacity="0.08"/>`+"\n",
				x1, top, math.Max(x2-x1, 0), bottom-top, color)
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" font-size="9" fill="%s">%s</text>`+"\n",
			x0+1, top-4-float64(i%2)*9, color, html.EscapeString(string(w.Kind)+" "+w.Node))
	}
	for i, f := range names {
		py := top + float64(i)*(panelH+gap)
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, py, plotW, panelH)
		fmt.Fprintf(&b, `<text x="4" y="%.0f" font-weight="bold">%s</text>`+"\n", py+12, html.EscapeString(f))
		counts := map[check.OpType]int{}
		for _, p := range panels[f] {
			counts[p.typ]++
		}
		fmt.Fprintf(&b, `<text x="4" y="%.0f" fill="#555">ok %d</text><text x="4" y="%.0f" fill="#555">fail %d</text><text x="4" y="%.0f" fill="#555">info %d</text>`+"\n",
			py+26, counts[check.OK], py+38, counts[check.Fail], py+50, counts[check.Info])
		for _, tick := range []float64{1e-3, 1e-2, 1e-1, 1, 10} {
			ty := y(i, tick)
			fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.0f" y="%.1f" text-anchor="end" fill="#555">%s</text>`+"\n",
				left, left+plotW, ty, ty, left-4, ty+3, tickLabel(tick))
		}
		// At most ~4000 ok points per panel; failures and infos all drawn.
		step := max(1, counts[check.OK]/4000)
		k := 0
		for _, p := range panels[f] {
			color := okColor
			switch p.typ {
			case check.Fail:
				color = failColor
			case check.Info:
				color = infoColor
			default:
				k++
				if k%step != 0 {
					continue
				}
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="1.6" fill="%s" fill-opacity="0.7"/>`+"\n", x(p.t), y(i, p.lat), color)
		}
	}
	// Time axis.
	tickEvery := math.Max(1, math.Pow(10, math.Floor(math.Log10(end/5))))
	if end/tickEvery > 12 {
		tickEvery *= 5
	} else if end/tickEvery > 6 {
		tickEvery *= 2
	}
	for t := 0.0; t <= end; t += tickEvery {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.0f" y2="%.0f" stroke="#999"/><text x="%.1f" y="%.0f" text-anchor="middle">%gs</text>`+"\n",
			x(t), x(t), bottom, bottom+4, x(t), bottom+16, t)
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

const (
	okColor   = "#2a9d3f"
	failColor = "#d62728"
	infoColor = "#ff9f1c"
)

var faultColors = map[FaultKind]string{
	FaultKill: "#d62728", FaultPause: "#1f77b4", FaultPartition: "#9467bd",
	FaultSlow: "#8c564b", FaultMember: "#e377c2", FaultCorrupt: "#bcbd22",
}

func tickLabel(sec float64) string {
	if sec < 1 {
		return fmt.Sprintf("%gms", sec*1000)
	}
	return fmt.Sprintf("%gs", sec)
}

func describeWindow(w FaultWindow) string {
	s := fmt.Sprintf("%s %s (%s) %.1fs-%.1fs", w.Kind, w.Node, w.Target, float64(w.Start)/1e9, float64(w.End)/1e9)
	if w.Detail != "" {
		s += ": " + w.Detail
	}
	if w.Error != "" {
		s += "; error: " + w.Error
	}
	return s
}

func errorSVG(err error) []byte {
	return []byte(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="600" height="40"><text x="4" y="20">no plot: %s</text></svg>`+"\n",
		html.EscapeString(err.Error())))
}
