package repo

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"
	"k8s.io/apimachinery/pkg/labels"
)

// The rollout policy contract: rollouts/<app>.yaml, read by the hub only (agents
// never look at it).
const (
	// RolloutsDir holds one rollout policy per app: rollouts/<app>.yaml.
	RolloutsDir = "rollouts"
	// MaxWaves is the most waves a rollout policy may list.
	MaxWaves = 50
	// MaxSoak is the longest soak a wave may set.
	MaxSoak = 7 * 24 * time.Hour
	// MaxProgressDeadline is the longest progressDeadline a policy may set.
	MaxProgressDeadline = 24 * time.Hour
	// DefaultProgressDeadline is progressDeadline when unset.
	DefaultProgressDeadline = 10 * time.Minute
	// DefaultOnFailure is onFailure when unset.
	DefaultOnFailure = OnFailureRollback
	// maxRolloutSelectorLen is the longest wave selector, in bytes.
	maxRolloutSelectorLen = 4096
	// maxWaveClusters is the most clusters a wave may name.
	maxWaveClusters = 1000
)

// RolloutPath is the repo path of app's rollout policy.
func RolloutPath(app string) string { return RolloutsDir + "/" + app + ".yaml" }

// OnFailure says what a rollout does when a wave fails beyond its maxFailures.
type OnFailure string

const (
	// OnFailureRollback sets every cluster the run touched back to the version it
	// ran before, in one commit.
	OnFailureRollback OnFailure = "rollback"
	// OnFailurePause holds the run for a person: resume, rollback or abort.
	OnFailurePause OnFailure = "pause"
)

// Approval says whether a wave waits for a person before it starts.
type Approval string

const (
	// ApprovalNone starts the wave as soon as the previous one is done.
	ApprovalNone Approval = ""
	// ApprovalManual waits for `outpost rollout approve`.
	ApprovalManual Approval = "manual"
)

// RolloutPolicy is rollouts/<app>.yaml: how a new version of the app moves across
// clusters. A cluster belongs to the first wave that selects it.
type RolloutPolicy struct {
	// Waves are the waves, in order; at least one.
	Waves []WavePolicy `json:"waves"`
	// ProgressDeadline is how long a cluster may take, from the wave's commit, to
	// report the new version Synced and Current before it counts as failed.
	ProgressDeadline time.Duration `json:"progressDeadline"`
	// OnFailure is what happens when a wave fails beyond its maxFailures.
	OnFailure OnFailure `json:"onFailure"`
	// Window, when set, restricts when a wave may start (rollbacks are never held).
	Window *Window `json:"window,omitempty"`
}

// WavePolicy is one wave of a rollout policy.
type WavePolicy struct {
	// Name names the wave in commits, status and events; unique in the policy.
	Name string `json:"name"`
	// Clusters are clusters named explicitly.
	Clusters []string `json:"clusters,omitempty"`
	// Selector is a Kubernetes label selector over cluster.yaml labels; the wave
	// holds the clusters it matches and those named (Clusters). At least one of the
	// two is set.
	Selector string `json:"selector,omitempty"`
	// MaxParallel is the most clusters of the wave changed at once (one commit per
	// batch); 0: the whole wave in one commit.
	MaxParallel int `json:"maxParallel,omitempty"`
	// Soak is how long every cluster must stay Synced and Current at the new version
	// before the wave counts as done.
	Soak time.Duration `json:"soak,omitempty"`
	// MaxFailures is how many clusters of the wave may fail before the run fails.
	MaxFailures FailureBudget `json:"maxFailures"`
	// Approval, when manual, holds the wave until someone approves it.
	Approval Approval `json:"approval,omitempty"`
}

// FailureBudget is a wave's maxFailures: a count, or a percentage of the wave's
// clusters (rounded down).
type FailureBudget struct {
	// Count is the number of clusters allowed to fail (when Percent is 0).
	Count int `json:"count,omitempty"`
	// Percent, when above 0, is the share of the wave's clusters allowed to fail.
	Percent int `json:"percent,omitempty"`
}

// Allowed returns how many of n clusters may fail.
func (b FailureBudget) Allowed(n int) int {
	if b.Percent > 0 {
		return n * b.Percent / 100
	}
	return b.Count
}

// String is the budget as written: "2" or "10%".
func (b FailureBudget) String() string {
	if b.Percent > 0 {
		return strconv.Itoa(b.Percent) + "%"
	}
	return strconv.Itoa(b.Count)
}

// Window is a weekly time window in one time zone.
type Window struct {
	// Days are the weekdays the window is open; empty: every day.
	Days []time.Weekday `json:"days,omitempty"`
	// Start and End are the minutes after midnight the window opens and closes
	// (End after Start: the window does not cross midnight).
	Start int `json:"start"`
	// End: see Start.
	End int `json:"end"`
	// TimeZone is the IANA time zone name, e.g. Europe/Paris ("UTC" by default).
	TimeZone string `json:"timeZone"`
}

// Open reports whether t is inside the window, and when it opens next otherwise.
func (w *Window) Open(t time.Time) (bool, time.Time) {
	if w == nil {
		return true, t
	}
	loc, err := time.LoadLocation(w.TimeZone)
	if err != nil {
		loc = time.UTC // validated at parse time; this is a last resort
	}
	lt := t.In(loc)
	for d := 0; d <= 7; d++ {
		day := time.Date(lt.Year(), lt.Month(), lt.Day()+d, 0, 0, 0, 0, loc)
		if len(w.Days) > 0 && !containsDay(w.Days, day.Weekday()) {
			continue
		}
		open := day.Add(time.Duration(w.Start) * time.Minute)
		closeAt := day.Add(time.Duration(w.End) * time.Minute)
		if d == 0 && !lt.Before(open) && lt.Before(closeAt) {
			return true, t
		}
		if open.After(lt) {
			return false, open
		}
	}
	return false, time.Time{}
}

func containsDay(days []time.Weekday, d time.Weekday) bool {
	for _, x := range days {
		if x == d {
			return true
		}
	}
	return false
}

// Select returns the wave of each cluster: the index of the first wave that selects
// it, for the clusters given with their labels. Clusters no wave selects are absent.
// A wave's named cluster that is not in clusters is returned in missing.
func (p *RolloutPolicy) Select(clusters map[string]map[string]string) (wave map[string]int, missing []string) {
	wave = map[string]int{}
	for i, w := range p.Waves {
		var sel labels.Selector
		if w.Selector != "" {
			sel, _ = labels.Parse(w.Selector) // validated at parse time
		}
		for _, c := range w.Clusters {
			if _, ok := clusters[c]; !ok {
				missing = append(missing, c)
				continue
			}
			if _, taken := wave[c]; !taken {
				wave[c] = i
			}
		}
		if sel == nil {
			continue
		}
		for c, l := range clusters {
			if _, taken := wave[c]; !taken && sel.Matches(labels.Set(l)) {
				wave[c] = i
			}
		}
	}
	return wave, missing
}

// ParseRolloutFile parses and validates rollouts/<app>.yaml strictly: unknown
// fields, bad durations, duplicate wave names and malformed selectors are errors
// naming the file, line and field.
func ParseRolloutFile(file string, data []byte) (*RolloutPolicy, error) {
	root, err := parseRoot(file, data)
	if err != nil {
		return nil, err
	}
	if root.n == nil {
		return nil, errAt(file, 0, "waves", "a rollout policy needs at least one wave")
	}
	p := &RolloutPolicy{ProgressDeadline: DefaultProgressDeadline, OnFailure: DefaultOnFailure}
	sawWaves := false
	err = root.fields(func(key string, v node) (bool, error) {
		var err error
		switch key {
		case "waves":
			sawWaves = true
			err = parseWaves(v, p)
		case "progressDeadline":
			p.ProgressDeadline, err = v.duration(DefaultProgressDeadline, MaxProgressDeadline)
		case "onFailure":
			p.OnFailure, err = onFailure(v)
		case "window":
			p.Window, err = parseWindow(v)
		default:
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return nil, err
	}
	if !sawWaves || len(p.Waves) == 0 {
		return nil, root.child("waves", nil).errf("a rollout policy needs at least one wave")
	}
	return p, nil
}

func parseWaves(v node, p *RolloutPolicy) error {
	if v.n != nil && v.n.Kind == yaml.SequenceNode && len(v.n.Content) > MaxWaves {
		return v.errf("lists %d waves, more than the limit of %d", len(v.n.Content), MaxWaves)
	}
	names := map[string]bool{}
	return v.list(func(_ int, item node) error {
		w := WavePolicy{}
		sawName := false
		err := item.fields(func(key string, f node) (bool, error) {
			var err error
			switch key {
			case "name":
				sawName = true
				err = scalarChecked(f, &w.Name, ValidateName)
			case "clusters":
				err = waveClusters(f, &w)
			case "selector":
				err = waveSelector(f, &w)
			case "maxParallel":
				w.MaxParallel, err = f.intIn(0, maxWaveClusters)
			case "soak":
				w.Soak, err = f.durationOrZero(MaxSoak)
			case "maxFailures":
				w.MaxFailures, err = failureBudget(f)
			case "approval":
				w.Approval, err = approval(f)
			default:
				return false, nil
			}
			return true, err
		})
		if err != nil {
			return err
		}
		if !sawName || w.Name == "" {
			return item.child("name", item.n).errf("every wave needs a name")
		}
		if names[w.Name] {
			return item.child("name", item.n).errf("wave name %q is used twice", w.Name)
		}
		names[w.Name] = true
		if w.Selector == "" && len(w.Clusters) == 0 {
			return item.errf("wave %q selects nothing: give clusters or a selector", w.Name)
		}
		p.Waves = append(p.Waves, w)
		return nil
	})
}

func waveClusters(f node, w *WavePolicy) error {
	seen := map[string]bool{}
	return f.list(func(i int, item node) error {
		if i >= maxWaveClusters {
			return item.errf("more than %d clusters", maxWaveClusters)
		}
		var name string
		if err := scalarChecked(item, &name, ValidateName); err != nil {
			return err
		}
		if seen[name] {
			return item.errf("cluster %q is listed twice", name)
		}
		seen[name] = true
		w.Clusters = append(w.Clusters, name)
		return nil
	})
}

func waveSelector(f node, w *WavePolicy) error {
	s, err := f.str()
	if err != nil {
		return err
	}
	if len(s) > maxRolloutSelectorLen {
		return f.errf("is %d bytes long, more than the limit of %d", len(s), maxRolloutSelectorLen)
	}
	if s == "" {
		return nil
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return f.errf("%q is not a label selector: %v", s, err)
	}
	if sel.Empty() {
		return f.errf("%q selects every cluster; name the labels to match", s)
	}
	w.Selector = s
	return nil
}

// intIn decodes an integer in [lo, hi]; null is lo.
func (x node) intIn(lo, hi int) (int, error) {
	if x.isNull() {
		return lo, nil
	}
	if x.n.Kind != yaml.ScalarNode || x.n.ShortTag() != "!!int" {
		return 0, x.errf("must be a whole number, got %s", kindName(x.n))
	}
	n, err := strconv.Atoi(x.n.Value)
	if err != nil || n < lo || n > hi {
		return 0, x.errf("must be a whole number from %d to %d, got %s", lo, hi, x.n.Value)
	}
	return n, nil
}

// durationOrZero decodes a duration that may be 0 ("0s"); null is 0.
func (x node) durationOrZero(max time.Duration) (time.Duration, error) {
	s, err := x.str()
	if err != nil || s == "" {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, x.errf("must be a duration like 90s or 5m, got %q", s)
	}
	if d < 0 || d > max {
		return 0, x.errf("must be from 0s to %s, got %s", max, s)
	}
	return d, nil
}

func failureBudget(f node) (FailureBudget, error) {
	s, err := f.str()
	if err != nil || s == "" {
		return FailureBudget{}, err
	}
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		n, err := strconv.Atoi(pct)
		if err != nil || n < 0 || n > 100 {
			return FailureBudget{}, f.errf("must be a count or a percentage from 0%% to 100%%, got %q", s)
		}
		return FailureBudget{Percent: n}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > maxWaveClusters {
		return FailureBudget{}, f.errf("must be a count (0 to %d) or a percentage like 10%%, got %q", maxWaveClusters, s)
	}
	return FailureBudget{Count: n}, nil
}

func approval(f node) (Approval, error) {
	s, err := f.str()
	if err != nil {
		return "", err
	}
	switch Approval(s) {
	case ApprovalNone, ApprovalManual:
		return Approval(s), nil
	}
	return "", f.errf("must be %q or left out, got %q", ApprovalManual, s)
}

func onFailure(v node) (OnFailure, error) {
	s, err := v.str()
	if err != nil {
		return "", err
	}
	switch OnFailure(s) {
	case "":
		return DefaultOnFailure, nil
	case OnFailureRollback, OnFailurePause:
		return OnFailure(s), nil
	}
	return "", v.errf("must be %q or %q, got %q", OnFailureRollback, OnFailurePause, s)
}

var weekdays = map[string]time.Weekday{
	"Sun": time.Sunday, "Mon": time.Monday, "Tue": time.Tuesday, "Wed": time.Wednesday,
	"Thu": time.Thursday, "Fri": time.Friday, "Sat": time.Saturday,
}

func parseWindow(v node) (*Window, error) {
	if v.isNull() {
		return nil, nil
	}
	w := &Window{TimeZone: "UTC"}
	sawHours := false
	err := v.fields(func(key string, f node) (bool, error) {
		switch key {
		case "days":
			return true, f.list(func(_ int, item node) error {
				s, err := item.str()
				if err != nil {
					return err
				}
				d, ok := weekdays[s]
				if !ok {
					return item.errf("must be one of Mon, Tue, Wed, Thu, Fri, Sat, Sun, got %q", s)
				}
				if containsDay(w.Days, d) {
					return item.errf("day %s is listed twice", s)
				}
				w.Days = append(w.Days, d)
				return nil
			})
		case "hours":
			sawHours = true
			s, err := f.str()
			if err != nil {
				return true, err
			}
			from, to, ok := strings.Cut(s, "-")
			start, err1 := clock(from)
			end, err2 := clock(to)
			if !ok || err1 != nil || err2 != nil || end <= start {
				return true, f.errf("must be HH:MM-HH:MM with the end after the start (same day), got %q", s)
			}
			w.Start, w.End = start, end
			return true, nil
		case "timeZone":
			s, err := f.str()
			if err != nil {
				return true, err
			}
			if _, err := time.LoadLocation(s); err != nil || s == "" || s == "Local" {
				return true, f.errf("%q is not an IANA time zone name like Europe/Paris", s)
			}
			w.TimeZone = s
			return true, nil
		}
		return false, nil
	})
	if err != nil {
		return nil, err
	}
	if !sawHours {
		return nil, v.child("hours", v.n).errf("a window needs hours, e.g. \"08:00-16:00\"")
	}
	return w, nil
}

// clock parses HH:MM (24:00 allowed as the end of the day) to minutes after midnight.
func clock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("bad time %q", s)
	}
	return hh*60 + mm, nil
}
