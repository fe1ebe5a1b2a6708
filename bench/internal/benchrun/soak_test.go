package benchrun

import (
	"math"
	"strings"
	"testing"
)

func TestGrowth(t *testing.T) {
	for name, tc := range map[string]struct {
		samples []float64
		want    float64
	}{
		"flat":                          {samples: []float64{10, 10, 10, 10, 10, 10}, want: 0},
		"doubles":                       {samples: []float64{10, 10, 15, 15, 20, 20}, want: 1},
		"shrinks":                       {samples: []float64{20, 20, 15, 15, 10, 10}, want: -0.5},
		"a spike in the middle":         {samples: []float64{10, 11, 50, 60, 10, 11}, want: 0},
		"one outlier in the last third": {samples: []float64{10, 10, 10, 10, 10, 10, 10, 10, 90}, want: 0},
		"too few samples":               {samples: []float64{1, 2}, want: 0},
		"first third zero":              {samples: []float64{0, 5, 9}, want: 0},
	} {
		t.Run(name, func(t *testing.T) {
			if got := growth(tc.samples); math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("growth(%v) = %v, want %v", tc.samples, got, tc.want)
			}
		})
	}
}

func TestSoakVerdict(t *testing.T) {
	for name, tc := range map[string]struct {
		goroutines, rss float64
		injected, seen  int
		want            []string // substrings, one per failed check
	}{
		"all within":      {goroutines: 0.05, rss: 0.1, injected: 60, seen: 60},
		"goroutines leak": {goroutines: 0.5, rss: 0, injected: 60, seen: 60, want: []string{"goroutines grew 50.0%"}},
		"rss grows":       {goroutines: 0, rss: 0.25, injected: 60, seen: 60, want: []string{"RSS grew 25.0%"}},
		"a drift missed":  {injected: 60, seen: 59, want: []string{"drift of 59 of 60 edits"}},
		"everything":      {goroutines: 1, rss: 1, injected: 2, seen: 0, want: []string{"goroutines", "RSS", "drift of 0 of 2"}},
	} {
		t.Run(name, func(t *testing.T) {
			got := soakVerdict(tc.goroutines, tc.rss, tc.injected, tc.seen)
			if len(got) != len(tc.want) {
				t.Fatalf("soakVerdict = %q, want %d failures %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("failure %d = %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
outpost_agent_drift_events_total{otel_scope_name="outpost",otel_scope_version=""} 3
outpost_agent_drift_events_total{otel_scope_name="other",app="a b"} 4
go_memstats_heap_inuse_bytes 1.5e+06
`
	got := parseMetrics(text)
	want := map[string]float64{"go_goroutines": 42, "outpost_agent_drift_events_total": 7, "go_memstats_heap_inuse_bytes": 1.5e6}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("metrics %v, want only %v", got, want)
	}
}

func TestInjectDriftNamesEachObjectOnce(t *testing.T) {
	const apps, objects = 7, 10 // ConfigMaps at 0, 2, 4, 6, 8: 35 of them
	seen := map[[2]int]bool{}
	for k := range apps * 5 {
		app, idx := driftTarget(k, apps, objects)
		if idx%2 != 0 || idx >= objects || app >= apps {
			t.Fatalf("edit %d: app %d object %d is not a ConfigMap of the set", k, app, idx)
		}
		if seen[[2]int{app, idx}] {
			t.Fatalf("edit %d: app %d object %d edited twice", k, app, idx)
		}
		seen[[2]int{app, idx}] = true
	}
}
