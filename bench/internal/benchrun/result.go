package benchrun

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Figure is one measured quantity: its samples and their summary.
type Figure struct {
	// Name says what was measured, e.g. "outpost first apply".
	Name string `json:"name"`
	// Unit is the unit of the samples: "ms", "requests", ...
	Unit string `json:"unit"`
	// Samples are the raw measurements, in the order taken.
	Samples []float64 `json:"samples"`
	// Median is the samples' median.
	Median float64 `json:"median"`
	// P99 is the samples' 99th percentile (nearest rank); with fewer than 100 samples
	// it is the maximum.
	P99 float64 `json:"p99"`
	// Min and Max bound the samples: the spread.
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

// Comparison sets a figure of Outpost beside a figure measured in the same run.
type Comparison struct {
	// Subject is Outpost's figure.
	Subject string `json:"subject"`
	// Baseline is the comparison's figure.
	Baseline string `json:"baseline"`
	// Ratio is median(Subject) / median(Baseline); NaN-free: 0 when the baseline is 0.
	Ratio float64 `json:"ratio"`
	// Target is the design brief's target for the ratio, when it has one (e.g. "≤ 0.5").
	Target string `json:"target,omitempty"`
}

// Result is the outcome of one measurement.
type Result struct {
	// Name identifies the measurement, e.g. "noop-cost".
	Name string `json:"name"`
	// Description says what was measured and how.
	Description string `json:"description"`
	// Scale describes the workload, e.g. "20 apps × 10 objects".
	Scale string `json:"scale"`
	// Figures are the measured quantities.
	Figures []Figure `json:"figures"`
	// Comparisons relate figures measured side by side.
	Comparisons []Comparison `json:"comparisons,omitempty"`
	// Notes are observations worth reading next to the figures.
	Notes []string `json:"notes,omitempty"`
	// Duration is how long the measurement took, set-up included.
	Duration time.Duration `json:"duration"`
	// Error is set when the measurement failed; its figures are then absent, except
	// when it failed a threshold it states (a soak's growth): then they show by how much.
	Error string `json:"error,omitempty"`
}

// figure summarises samples under name.
func figure(name, unit string, samples []float64) Figure {
	f := Figure{Name: name, Unit: unit, Samples: samples}
	if len(samples) == 0 {
		return f
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	f.Min, f.Max = s[0], s[len(s)-1]
	if n := len(s); n%2 == 1 {
		f.Median = s[n/2]
	} else {
		f.Median = (s[n/2-1] + s[n/2]) / 2
	}
	rank := int(math.Ceil(0.99*float64(len(s)))) - 1
	f.P99 = s[max(rank, 0)]
	return f
}

// millis converts durations to milliseconds.
func millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d.Microseconds()) / 1000
	}
	return out
}

// compare relates two figures of r by name.
func (r *Result) compare(subject, baseline, target string) {
	var s, b *Figure
	for i := range r.Figures {
		switch r.Figures[i].Name {
		case subject:
			s = &r.Figures[i]
		case baseline:
			b = &r.Figures[i]
		}
	}
	if s == nil || b == nil {
		return
	}
	c := Comparison{Subject: subject, Baseline: baseline, Target: target}
	if b.Median != 0 {
		c.Ratio = s.Median / b.Median
	}
	r.Comparisons = append(r.Comparisons, c)
}

// Markdown renders results as a Markdown document: one table of figures and one of
// comparisons per measurement.
func Markdown(rep Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Outpost benchmarks, %s\n\n", rep.Started.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Mode: %s. Host: %s, %d CPUs, %s. Go %s. Kubernetes %s.\n\n",
		rep.Mode, rep.Host, rep.CPUs, rep.OS, rep.GoVersion, rep.KubernetesVersion)
	for _, r := range rep.Results {
		fmt.Fprintf(&b, "## %s (%s)\n\n%s\n\n", r.Name, r.Scale, r.Description)
		if r.Error != "" {
			fmt.Fprintf(&b, "**Failed:** %s\n\n", r.Error)
			if len(r.Figures) == 0 {
				continue
			}
		}
		b.WriteString("| figure | unit | n | median | p99 | min | max |\n|---|---|---:|---:|---:|---:|---:|\n")
		for _, f := range r.Figures {
			fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s |\n", f.Name, f.Unit, len(f.Samples),
				num(f.Median), num(f.P99), num(f.Min), num(f.Max))
		}
		if len(r.Comparisons) > 0 {
			b.WriteString("\n| comparison (medians) | ratio | target |\n|---|---:|---|\n")
			for _, c := range r.Comparisons {
				fmt.Fprintf(&b, "| %s / %s | %.3f× | %s |\n", c.Subject, c.Baseline, c.Ratio, c.Target)
			}
		}
		for _, n := range r.Notes {
			fmt.Fprintf(&b, "\n- %s", n)
		}
		fmt.Fprintf(&b, "\n\n_took %s_\n\n", r.Duration.Round(time.Second))
	}
	return b.String()
}

// num formats a figure compactly.
func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e9:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}
