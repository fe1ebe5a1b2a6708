package repo

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseRolloutFileReadsEveryField(t *testing.T) {
	p, err := ParseRolloutFile("rollouts/web.yaml", []byte(`
waves:
  - name: canary
    clusters: [dev-1]
    soak: 30s
  - name: prod-eu
    selector: env=prod,region in (eu)
    maxParallel: 2
    maxFailures: 10%
    soak: 1h
    approval: manual
  - name: rest
    selector: env=prod
    maxFailures: 1
progressDeadline: 5m
onFailure: pause
window: {days: [Mon, Tue], hours: "08:00-16:30", timeZone: Europe/Paris}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Waves) != 3 || p.Waves[0].Name != "canary" || !slices.Equal(p.Waves[0].Clusters, []string{"dev-1"}) ||
		p.Waves[0].Soak != 30*time.Second {
		t.Errorf("wave 0 = %+v", p.Waves[0])
	}
	w1 := p.Waves[1]
	if w1.Selector != "env=prod,region in (eu)" || w1.MaxParallel != 2 || w1.MaxFailures != (FailureBudget{Percent: 10}) ||
		w1.Soak != time.Hour || w1.Approval != ApprovalManual {
		t.Errorf("wave 1 = %+v", w1)
	}
	if p.Waves[2].MaxFailures.Allowed(7) != 1 || w1.MaxFailures.Allowed(25) != 2 {
		t.Errorf("budgets: %d, %d", p.Waves[2].MaxFailures.Allowed(7), w1.MaxFailures.Allowed(25))
	}
	if p.ProgressDeadline != 5*time.Minute || p.OnFailure != OnFailurePause {
		t.Errorf("policy = %+v", p)
	}
	if p.Window == nil || p.Window.Start != 8*60 || p.Window.End != 16*60+30 || p.Window.TimeZone != "Europe/Paris" ||
		!slices.Equal(p.Window.Days, []time.Weekday{time.Monday, time.Tuesday}) {
		t.Errorf("window = %+v", p.Window)
	}
}

func TestParseRolloutFileDefaults(t *testing.T) {
	p, err := ParseRolloutFile("rollouts/web.yaml", []byte("waves: [{name: all, selector: env=prod}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ProgressDeadline != DefaultProgressDeadline || p.OnFailure != OnFailureRollback || p.Window != nil ||
		p.Waves[0].MaxParallel != 0 || p.Waves[0].Soak != 0 || p.Waves[0].MaxFailures.Allowed(10) != 0 {
		t.Errorf("defaults = %+v", p)
	}
}

func TestParseRolloutFileRefusesBadInput(t *testing.T) {
	cases := map[string]struct{ yaml, want string }{
		"empty file":         {"", "waves: a rollout policy needs at least one wave"},
		"no waves":           {"onFailure: pause\n", "waves: a rollout policy needs at least one wave"},
		"unknown field":      {"waves: [{name: a, clusters: [x]}]\nwavez: 1\n", "wavez: unknown field"},
		"unknown wave field": {"waves: [{name: a, clusters: [x], soke: 1m}]\n", "waves[0].soke: unknown field"},
		"wave without name":  {"waves: [{clusters: [x]}]\n", "waves[0].name: every wave needs a name"},
		"duplicate name":     {"waves: [{name: a, clusters: [x]}, {name: a, clusters: [y]}]\n", `wave name "a" is used twice`},
		"selects nothing":    {"waves: [{name: a}]\n", `wave "a" selects nothing`},
		"bad selector":       {"waves: [{name: a, selector: 'env in prod'}]\n", "waves[0].selector: \"env in prod\" is not a label selector"},
		"bad cluster name":   {"waves: [{name: a, clusters: [Bad_Name]}]\n", "waves[0].clusters[0]"},
		"duplicate cluster":  {"waves: [{name: a, clusters: [x, x]}]\n", `cluster "x" is listed twice`},
		"negative parallel":  {"waves: [{name: a, clusters: [x], maxParallel: -1}]\n", "waves[0].maxParallel: must be a whole number from 0"},
		"string parallel":    {"waves: [{name: a, clusters: [x], maxParallel: two}]\n", "waves[0].maxParallel: must be a whole number"},
		"bad soak":           {"waves: [{name: a, clusters: [x], soak: 5 minutes}]\n", "waves[0].soak: must be a duration"},
		"long soak":          {"waves: [{name: a, clusters: [x], soak: 999h}]\n", "waves[0].soak: must be from 0s to"},
		"bad budget":         {"waves: [{name: a, clusters: [x], maxFailures: 120%}]\n", "waves[0].maxFailures: must be a count or a percentage"},
		"bad approval":       {"waves: [{name: a, clusters: [x], approval: auto}]\n", `waves[0].approval: must be "manual" or left out`},
		"bad onFailure":      {"waves: [{name: a, clusters: [x]}]\nonFailure: ignore\n", `onFailure: must be "rollback" or "pause"`},
		"zero deadline":      {"waves: [{name: a, clusters: [x]}]\nprogressDeadline: 0s\n", "progressDeadline: must be more than 0s"},
		"bad hours":          {"waves: [{name: a, clusters: [x]}]\nwindow: {hours: '16:00-08:00'}\n", "window.hours: must be HH:MM-HH:MM"},
		"window no hours":    {"waves: [{name: a, clusters: [x]}]\nwindow: {days: [Mon]}\n", "window.hours: a window needs hours"},
		"bad day":            {"waves: [{name: a, clusters: [x]}]\nwindow: {days: [Monday], hours: '08:00-09:00'}\n", "window.days[0]: must be one of"},
		"bad zone":           {"waves: [{name: a, clusters: [x]}]\nwindow: {hours: '08:00-09:00', timeZone: Mars/Olympus}\n", `window.timeZone: "Mars/Olympus" is not an IANA time zone`},
		"waves not a list":   {"waves: {name: a}\n", "waves: must be a list"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseRolloutFile("rollouts/web.yaml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("accepted %q", tc.yaml)
			}
			var re *Error
			if !errors.As(err, &re) || re.File != "rollouts/web.yaml" {
				t.Errorf("error %v (%T) does not name the file", err, err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestRolloutPolicySelectPutsAClusterInItsFirstWave(t *testing.T) {
	p := &RolloutPolicy{Waves: []WavePolicy{
		{Name: "canary", Clusters: []string{"prod-1", "gone"}},
		{Name: "prod", Selector: "env=prod"},
		{Name: "dev", Selector: "env in (dev,prod)"},
	}}
	got, missing := p.Select(map[string]map[string]string{
		"prod-1": {"env": "prod"}, "prod-2": {"env": "prod"}, "dev-1": {"env": "dev"}, "lab": {"env": "lab"},
	})
	want := map[string]int{"prod-1": 0, "prod-2": 1, "dev-1": 2}
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for c, w := range want {
		if got[c] != w {
			t.Errorf("%s in wave %d, want %d", c, got[c], w)
		}
	}
	if !slices.Equal(missing, []string{"gone"}) {
		t.Errorf("missing = %v", missing)
	}
}

func TestWindowOpen(t *testing.T) {
	w := &Window{Days: []time.Weekday{time.Monday}, Start: 8 * 60, End: 16 * 60, TimeZone: "UTC"}
	mon := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC) // a Monday
	cases := map[string]struct {
		at       time.Time
		open     bool
		nextOpen time.Time
	}{
		"inside":          {mon.Add(9 * time.Hour), true, mon.Add(9 * time.Hour)},
		"before opening":  {mon.Add(7 * time.Hour), false, mon.Add(8 * time.Hour)},
		"at closing":      {mon.Add(16 * time.Hour), false, mon.Add(7*24*time.Hour + 8*time.Hour)},
		"on a closed day": {mon.Add(-24 * time.Hour), false, mon.Add(8 * time.Hour)},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			open, next := w.Open(tc.at)
			if open != tc.open || !next.Equal(tc.nextOpen) {
				t.Errorf("Open(%s) = %v, %s; want %v, %s", tc.at, open, next, tc.open, tc.nextOpen)
			}
		})
	}
}
