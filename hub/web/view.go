package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// This file turns api/v1 data into what the templates show. It does no I/O.

// state classifies a matrix cell or an app for its colour; the templates always show
// the phase and health text next to it.
type state string

const (
	stateNone     state = "none"     // neither desired nor reported
	stateOK       state = "ok"       // synced and healthy
	stateProgress state = "progress" // pending, syncing, on its way to a new version, or becoming healthy
	stateDrift    state = "drift"    // synced, but fields were changed out of band
	stateFailed   state = "failed"   // sync failed, source unavailable, or unhealthy
	stateUnknown  state = "unknown"  // desired, never reported
	stateRemoved  state = "removed"  // pruned after it left Git
)

// cellState classifies one app on one cluster; the worst condition wins.
func cellState(c apiv1.MatrixCell) state {
	switch {
	case c.Phase == apiv1.PhaseRemoved:
		return stateRemoved
	case c.Phase == "":
		if c.DesiredVersion == "" {
			return stateNone
		}
		return stateUnknown
	case c.Phase == apiv1.PhaseFailed || c.Phase == apiv1.PhaseSourceUnavailable ||
		c.Health == apiv1.HealthFailed || c.Health == apiv1.HealthTimeout:
		return stateFailed
	case c.Drifted > 0:
		return stateDrift
	case c.Phase != apiv1.PhaseSynced || c.Health != apiv1.HealthCurrent ||
		c.DesiredVersion != "" && c.DesiredVersion != c.Version:
		return stateProgress
	}
	return stateOK
}

// badge is a label with its colour class and a glyph; the text always says what the
// colour does.
type badge struct {
	Text  string
	Class string
	Glyph string
}

func phaseBadge(p apiv1.Phase) badge {
	switch p {
	case apiv1.PhaseSynced:
		return badge{"Synced", "ok", "✓"}
	case apiv1.PhasePending:
		return badge{"Pending", "progress", "…"}
	case apiv1.PhaseSyncing:
		return badge{"Syncing", "progress", "↻"}
	case apiv1.PhaseFailed:
		return badge{"Failed", "failed", "✕"}
	case apiv1.PhaseSourceUnavailable:
		return badge{"Source unavailable", "warn", "!"}
	case apiv1.PhaseRemoved:
		return badge{"Removed", "muted", "–"}
	case "":
		return badge{"Not reported", "muted", "?"}
	}
	return badge{string(p), "muted", "?"}
}

func healthBadge(h apiv1.HealthStatus) badge {
	switch h {
	case apiv1.HealthCurrent:
		return badge{"Healthy", "ok", "♥"}
	case apiv1.HealthInProgress:
		return badge{"Progressing", "progress", "↻"}
	case apiv1.HealthFailed:
		return badge{"Unhealthy", "failed", "✕"}
	case apiv1.HealthTimeout:
		return badge{"Health timeout", "warn", "!"}
	case apiv1.HealthUnknown, "":
		return badge{"Health unknown", "muted", "?"}
	}
	return badge{string(h), "muted", "?"}
}

// cellView is one cell of the matrix.
type cellView struct {
	App     string
	State   state
	Version string
	// Desired is the desired version when it differs from the reported one.
	Desired string
	Phase   badge
	Health  badge
	Drifted int
	Synced  time.Time
	// Rollout is the ID of the active rollout run holding the app on the cluster.
	Rollout string
}

// rowView is one cluster of the matrix.
type rowView struct {
	Cluster string
	Labels  []string
	Cells   []cellView
	// Worst is the worst state of the row's cells, for the row's marker.
	Worst state
}

// totals count the matrix's cells for the summary cards.
type totals struct {
	Clusters, Apps, Cells                          int
	OK, Progress, Drifted, Failed, Unknown, Absent int
}

// rank orders states from best to worst.
func (s state) rank() int {
	switch s {
	case stateRemoved:
		return 1
	case stateOK:
		return 2
	case stateUnknown:
		return 3
	case stateProgress:
		return 4
	case stateDrift:
		return 5
	case stateFailed:
		return 6
	}
	return 0
}

func worse(a, b state) state {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// matrixView lays the matrix out as rows of cells in column order, and counts them;
// held names the active run holding a (cluster, app), if any.
func matrixView(m *apiv1.Matrix, held map[[2]string]string) ([]rowView, totals) {
	t := totals{Clusters: len(m.Clusters), Apps: len(m.Apps)}
	rows := make([]rowView, 0, len(m.Clusters))
	for _, r := range m.Clusters {
		row := rowView{Cluster: r.Cluster, Labels: labelList(r.Labels), Worst: stateNone}
		for _, app := range m.Apps {
			c, ok := r.Apps[app]
			if !ok {
				row.Cells = append(row.Cells, cellView{App: app, State: stateNone})
				continue
			}
			cv := cellView{
				App: app, State: cellState(c), Version: c.Version, Phase: phaseBadge(c.Phase),
				Health: healthBadge(c.Health), Drifted: c.Drifted, Synced: c.LastSyncedAt,
				Rollout: held[[2]string{r.Cluster, app}],
			}
			if c.DesiredVersion != "" && c.DesiredVersion != c.Version {
				cv.Desired = c.DesiredVersion
			}
			row.Cells = append(row.Cells, cv)
			row.Worst = worse(row.Worst, cv.State)
			t.Cells++
			switch cv.State {
			case stateOK:
				t.OK++
			case stateProgress:
				t.Progress++
			case stateDrift:
				t.Drifted++
			case stateFailed:
				t.Failed++
			case stateUnknown:
				t.Unknown++
			case stateRemoved, stateNone:
				t.Absent++
			}
		}
		rows = append(rows, row)
	}
	return rows, t
}

// attentionClusters returns, by name, the clusters of the matrix with a cell that
// has drift, failed or is unhealthy: those whose details the overview fetches.
func attentionClusters(m *apiv1.Matrix) []string {
	var out []string
	for _, r := range m.Clusters {
		for _, c := range r.Apps {
			if s := cellState(c); s == stateFailed || s == stateDrift {
				out = append(out, r.Cluster)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// issueView is one app needing attention: its error, bad health and drift.
type issueView struct {
	Cluster string
	App     string
	State   state
	Version string
	Phase   badge
	Health  badge
	// HealthMessage explains a health other than Current.
	HealthMessage string
	HealthObject  string
	Error         *errorView
	Drift         []driftView
}

// errorView is a sync error with where it happened.
type errorView struct {
	Stage   string
	Message string
	// Where is "file:line", the object and the field, as far as known.
	Where []string
}

// driftView is one drifted object.
type driftView struct {
	Object    string
	Deleted   bool
	Corrected bool
	Observed  time.Time
	Fields    []fieldView
}

// fieldView is one drifted field: desired → live, who and when.
type fieldView struct {
	Path     string
	Desired  string
	Live     string
	Manager  string
	How      string
	Time     time.Time
	Observed bool
	Redacted bool
}

// issues returns the apps of a cluster status that need attention: with drift, a
// sync error, or bad health.
func issues(st *apiv1.ClusterStatus) []issueView {
	var out []issueView
	for _, a := range st.Apps {
		if a.Phase == apiv1.PhaseRemoved {
			continue
		}
		bad := a.Health.Status == apiv1.HealthFailed || a.Health.Status == apiv1.HealthTimeout
		if a.Error == nil && len(a.Drift) == 0 && !bad {
			continue
		}
		iv := issueView{
			Cluster: st.Cluster.Name, App: a.App, Version: a.Version,
			Phase: phaseBadge(a.Phase), Health: healthBadge(a.Health.Status),
			State: cellState(apiv1.MatrixCell{
				DesiredVersion: a.DesiredVersion, Version: a.Version, Phase: a.Phase,
				Health: a.Health.Status, Drifted: len(a.Drift),
			}),
		}
		if a.Health.Status != apiv1.HealthCurrent {
			iv.HealthMessage = a.Health.Message
			if a.Health.Object != nil {
				iv.HealthObject = a.Health.Object.String()
			}
		}
		if e := a.Error; e != nil {
			ev := &errorView{Stage: string(e.Stage), Message: e.Message}
			switch {
			case e.File != "" && e.Line > 0:
				ev.Where = append(ev.Where, fmt.Sprintf("%s:%d", e.File, e.Line))
			case e.File != "":
				ev.Where = append(ev.Where, e.File)
			}
			if e.Object != nil {
				ev.Where = append(ev.Where, e.Object.String())
			}
			if e.Field != "" {
				ev.Where = append(ev.Where, e.Field)
			}
			iv.Error = ev
		}
		for _, d := range a.Drift {
			iv.Drift = append(iv.Drift, newDriftView(d))
		}
		out = append(out, iv)
	}
	return out
}

func newDriftView(d apiv1.Drift) driftView {
	dv := driftView{Object: d.Object.String(), Deleted: d.Deleted, Corrected: d.Corrected, Observed: d.ObservedAt}
	for _, f := range d.Fields {
		how := f.Operation
		if f.Subresource != "" {
			how += " /" + f.Subresource
		}
		dv.Fields = append(dv.Fields, fieldView{
			Path: f.Path, Desired: jsonValue(f.Desired, "(unknown)"), Live: jsonValue(f.Live, "(removed)"),
			Manager: f.Manager, How: how, Time: f.Time, Observed: f.TimeObserved, Redacted: f.Redacted,
		})
	}
	return dv
}

// maxValueLen bounds a value shown in a drift row; the whole value is in its title.
const maxValueLen = 80

// jsonValue formats a drift value compactly: JSON, with absent for a missing or null
// value.
func jsonValue(raw json.RawMessage, absent string) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return absent
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(raw)
	}
	return buf.String()
}

// truncate shortens s to n runes with an ellipsis.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// appView is one row of a cluster page's app table.
type appView struct {
	App      string
	State    state
	Desired  string
	Version  string
	Pending  bool
	Phase    badge
	Health   badge
	Drifted  int
	Revision string
	Synced   time.Time
	Received time.Time
	Duration time.Duration
	Counts   string
}

func appViews(st *apiv1.ClusterStatus) []appView {
	out := make([]appView, 0, len(st.Apps))
	for _, a := range st.Apps {
		out = append(out, appView{
			App: a.App, Desired: a.DesiredVersion, Version: a.Version,
			Pending: a.DesiredVersion != "" && a.Version != "" && a.DesiredVersion != a.Version,
			Phase:   phaseBadge(a.Phase), Health: healthBadge(a.Health.Status), Drifted: len(a.Drift),
			Revision: a.Revision, Synced: a.LastSyncedAt, Received: a.ReceivedAt,
			Duration: time.Duration(a.Durations.TotalMs) * time.Millisecond,
			Counts:   countsText(a.Counts),
			State: cellState(apiv1.MatrixCell{
				DesiredVersion: a.DesiredVersion, Version: a.Version, Phase: a.Phase,
				Health: a.Health.Status, Drifted: len(a.Drift),
			}),
		})
	}
	return out
}

// countsText summarises a sync's object counts, leaving out zeros.
func countsText(c apiv1.Counts) string {
	if c.Desired == 0 && c.Pruned == 0 && c.Failed == 0 {
		return ""
	}
	parts := []string{fmt.Sprintf("%d objects", c.Desired)}
	for _, p := range []struct {
		n    int
		what string
	}{
		{c.Created, "created"}, {c.Configured, "configured"}, {c.Recreated, "recreated"},
		{c.Pruned, "pruned"}, {c.Failed, "failed"},
	} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	return strings.Join(parts, " · ")
}

// eventView is one row of the events table.
type eventView struct {
	Time    time.Time
	Cluster string
	App     string
	Type    badge
	Message string
	Version string
}

func eventViews(el *apiv1.EventList) []eventView {
	out := make([]eventView, 0, len(el.Events))
	for _, e := range el.Events {
		out = append(out, eventView{
			Time: e.Time, Cluster: e.Cluster, App: e.App, Type: eventBadge(e.Type), Message: e.Message, Version: e.Version,
		})
	}
	return out
}

func eventBadge(t apiv1.EventType) badge {
	switch t {
	case apiv1.EventSync:
		return badge{"sync", "ok", "↻"}
	case apiv1.EventError:
		return badge{"error", "failed", "✕"}
	case apiv1.EventHealth:
		return badge{"health", "progress", "♥"}
	case apiv1.EventDrift:
		return badge{"drift", "drift", "⚠"}
	case apiv1.EventRollout:
		return badge{"rollout", "soak", "⇶"}
	}
	return badge{string(t), "muted", "•"}
}

// labelList formats labels as sorted "key=value" strings.
func labelList(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		out = append(out, k+"="+labels[k])
	}
	return out
}

// ago formats the time from t to now for people: "just now", "42s ago", "5m ago",
// "3h ago", "12d ago"; "never" for the zero time.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 2*time.Second:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return fmt.Sprintf("%dd ago", int(d.Hours()/24))
}

// shortRev abbreviates a revision to 12 hex digits.
func shortRev(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

// duration formats a sync duration: "850ms", "1.6s", "2m05s".
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	}
	return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
}
