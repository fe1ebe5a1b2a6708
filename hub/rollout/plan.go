package rollout

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// Fleet is what the head of the repository says about the clusters a run may
// touch.
type Fleet struct {
	// Revision is the head's commit.
	Revision string
	// Labels are every cluster's cluster.yaml labels, by cluster.
	Labels map[string]map[string]string
	// Apps are the app directories under apps/.
	Apps []string
}

// Observation is what the gates read about one cluster.
type Observation struct {
	// Report is the app's last reported status on the cluster; nil if none.
	Report *apiv1.RolloutReport
	// AtCommit is true when Report.Revision is the commit of the cluster's latest
	// step or a descendant of it (computed by the driver from Git).
	AtCommit bool
}

// ActionError is a person's action that the run's state does not allow.
type ActionError struct {
	// ID is the run.
	ID string
	// Action is the action.
	Action apiv1.RolloutAction
	// State is the run's state.
	State apiv1.RolloutState
	// Msg says why.
	Msg string
}

func (e *ActionError) Error() string {
	return fmt.Sprintf("rollout %s is %s: cannot %s: %s", e.ID, e.State, e.Action, e.Msg)
}

// StartError is a run that cannot start: the policy selects no cluster, names a
// cluster that does not exist, or the app does not exist.
type StartError struct {
	// App is the app.
	App string
	// Msg says why.
	Msg string
}

func (e *StartError) Error() string { return fmt.Sprintf("rollout of %s: %s", e.App, e.Msg) }

// NewRun builds a run of app at version from its policy and the head's fleet.
func NewRun(id, app, version string, p *repo.RolloutPolicy, f Fleet, by string, now time.Time) (*apiv1.Rollout, error) {
	if !slices.Contains(f.Apps, app) {
		return nil, &StartError{App: app, Msg: fmt.Sprintf("no directory apps/%s/ at %s", app, f.Revision)}
	}
	waveOf, missing := p.Select(f.Labels)
	if len(missing) > 0 {
		return nil, &StartError{App: app, Msg: fmt.Sprintf("%s names clusters that do not exist at %s: %s",
			repo.RolloutPath(app), f.Revision, strings.Join(missing, ", "))}
	}
	if len(waveOf) == 0 {
		return nil, &StartError{App: app, Msg: fmt.Sprintf("the waves of %s select no cluster at %s", repo.RolloutPath(app), f.Revision)}
	}
	r := &apiv1.Rollout{
		ID: id, App: app, Version: version, State: apiv1.RolloutRunning, Revision: f.Revision,
		Policy:    apiv1.RolloutPolicy{ProgressDeadlineSeconds: int64(p.ProgressDeadline / time.Second), OnFailure: string(p.OnFailure), Window: windowString(p.Window)},
		CreatedBy: by, CreatedAt: now, UpdatedAt: now, Generation: 1, Steps: []apiv1.RolloutStep{},
	}
	for i, w := range p.Waves {
		var clusters []string
		for c, wi := range waveOf {
			if wi == i {
				clusters = append(clusters, c)
			}
		}
		sort.Strings(clusters)
		r.Waves = append(r.Waves, apiv1.RolloutWave{
			Name: w.Name, Clusters: nonNil(clusters), MaxParallel: w.MaxParallel, SoakSeconds: int64(w.Soak / time.Second),
			MaxFailures: w.MaxFailures.Allowed(len(clusters)), Approval: string(w.Approval),
		})
		for _, c := range clusters {
			r.Clusters = append(r.Clusters, apiv1.RolloutCluster{Cluster: c, Wave: i, Phase: apiv1.ClusterPending, Step: -1})
		}
	}
	return r, nil
}

// windowString describes a window for the wire: "Mon,Tue 08:00-16:00 Europe/Paris".
func windowString(w *repo.Window) string {
	if w == nil {
		return ""
	}
	var days []string
	for _, d := range w.Days {
		days = append(days, d.String()[:3])
	}
	s := fmt.Sprintf("%02d:%02d-%02d:%02d %s", w.Start/60, w.Start%60, w.End/60, w.End%60, w.TimeZone)
	if len(days) > 0 {
		s = strings.Join(days, ",") + " " + s
	}
	return s
}

// parseWindow reads windowString's output back (the run keeps its policy).
func parseWindow(s string) *repo.Window {
	if s == "" {
		return nil
	}
	f := strings.Fields(s)
	w := &repo.Window{TimeZone: f[len(f)-1]}
	if len(f) == 3 {
		for _, d := range strings.Split(f[0], ",") {
			for wd := time.Sunday; wd <= time.Saturday; wd++ {
				if wd.String()[:3] == d {
					w.Days = append(w.Days, wd)
				}
			}
		}
	}
	var h1, m1, h2, m2 int
	if _, err := fmt.Sscanf(f[len(f)-2], "%d:%d-%d:%d", &h1, &m1, &h2, &m2); err == nil {
		w.Start, w.End = h1*60+m1, h2*60+m2
	}
	return w
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// PendingStep returns the index of the step being written (no commit recorded
// yet), or -1.
func PendingStep(r *apiv1.Rollout) int {
	if n := len(r.Steps); n > 0 && r.Steps[n-1].Commit == "" {
		return n - 1
	}
	return -1
}

// Trailers are the trailers of step i of run r's commit; the first two (run and
// step) identify it in the history.
func Trailers(r *apiv1.Rollout, i int) []gitstore.Trailer {
	s := r.Steps[i]
	t := []gitstore.Trailer{{Key: "Outpost-Rollout", Value: r.ID}, {Key: "Outpost-Step", Value: fmt.Sprint(i)}}
	if s.Kind == apiv1.StepForward {
		t = append(t, gitstore.Trailer{Key: "Outpost-Wave", Value: r.Waves[s.Wave].Name})
	} else {
		t = append(t, gitstore.Trailer{Key: "Outpost-Rollback", Value: "true"})
	}
	return t
}

// Subject is the first line of step i's commit message.
func Subject(r *apiv1.Rollout, i int) string {
	s := r.Steps[i]
	if s.Kind == apiv1.StepRollback {
		return fmt.Sprintf("rollout %s: roll %s back on %d clusters", r.ID, r.App, len(s.Clusters))
	}
	return fmt.Sprintf("rollout %s: set %s=%s on wave %s (%d clusters)", r.ID, r.App, r.Version, r.Waves[s.Wave].Name, len(s.Clusters))
}

// Record applies the outcome of step i's commit: commit is the commit that holds
// it (the head when nothing needed to change), left are the clusters the commit
// left alone (someone else changed them), with the version found there.
func Record(r *apiv1.Rollout, i int, commit string, left map[string]string, now time.Time) (*apiv1.Rollout, []apiv1.Event) {
	n := clone(r)
	st := &n.Steps[i]
	st.Commit, st.At = commit, now
	var evs []apiv1.Event
	for _, name := range st.Clusters {
		c := n.cluster(name)
		found, conflict := left[name]
		switch {
		case st.Kind == apiv1.StepForward && conflict:
			c.Phase, c.DoneAt = apiv1.ClusterSkipped, now
			c.Message = fmt.Sprintf("left alone: someone set %s to %s before the run's commit (expected %s)", n.App, orNone(found), orNone(c.Previous))
			evs = append(evs, n.event(name, now, "cluster "+name+" skipped: "+c.Message))
		case st.Kind == apiv1.StepForward:
			c.Phase, c.WrittenAt, c.FirstHealthyAt = apiv1.ClusterProgressing, now, time.Time{}
		case conflict:
			c.Phase, c.DoneAt = apiv1.ClusterConflict, now
			c.Message = fmt.Sprintf("not rolled back: %s is at %s there, not the run's %s (someone changed it)", n.App, orNone(found), n.Version)
			evs = append(evs, n.event(name, now, "cluster "+name+" not rolled back: "+c.Message))
		default:
			c.Phase, c.WrittenAt, c.FirstHealthyAt, c.DoneAt = apiv1.ClusterRollingBack, now, time.Time{}, time.Time{}
		}
	}
	if st.Kind == apiv1.StepForward && n.Waves[st.Wave].StartedAt.IsZero() {
		n.Waves[st.Wave].StartedAt = now
	}
	evs = append(evs, n.event("", now, fmt.Sprintf("commit %s: %s", short(commit), Subject((*apiv1.Rollout)(&n), i))))
	return n.touch(now), evs
}

// Advance evaluates run r against the clusters' reports at now and returns the
// next state (r itself, unchanged, when nothing changed) and its events. It plans
// at most one new step; the caller writes it (see PendingStep) before advancing
// again.
func Advance(r *apiv1.Rollout, obs map[string]Observation, now time.Time) (*apiv1.Rollout, []apiv1.Event) {
	if PendingStep(r) >= 0 || !r.State.Active() {
		return r, nil
	}
	n := clone(r)
	var evs []apiv1.Event
	deadline := time.Duration(n.Policy.ProgressDeadlineSeconds) * time.Second
	switch n.State {
	case apiv1.RolloutRollingBack:
		evs = n.watchRollback(obs, deadline, now)
	case apiv1.RolloutRunning:
		evs = n.watchWave(obs, deadline, now)
		if n.State == apiv1.RolloutRunning {
			evs = append(evs, n.nextStep(now)...)
		}
	default: // Paused, AwaitingApproval: the reports are kept for the status only
		for i := range n.Clusters {
			if o, ok := obs[n.Clusters[i].Cluster]; ok && o.Report != nil {
				n.Clusters[i].Reported = o.Report
			}
		}
	}
	if equalRuns(r, &n) {
		return r, nil
	}
	return n.touch(now), evs
}

// watchWave runs the gates of the current wave's written clusters.
func (n *run) watchWave(obs map[string]Observation, deadline time.Duration, now time.Time) []apiv1.Event {
	if n.Wave >= len(n.Waves) {
		return nil
	}
	w := n.Waves[n.Wave]
	soak := time.Duration(w.SoakSeconds) * time.Second
	var evs []apiv1.Event
	failed := 0
	for i := range n.Clusters {
		c := &n.Clusters[i]
		if c.Wave != n.Wave {
			continue
		}
		if c.Phase == apiv1.ClusterProgressing || c.Phase == apiv1.ClusterSoaking {
			o := obs[c.Cluster]
			if o.Report != nil {
				c.Reported = o.Report
			}
			commit := n.Steps[c.Step].Commit
			rep := o.Report
			atVersion := rep != nil && rep.Version == n.Version && o.AtCommit
			switch {
			case atVersion && (rep.Phase == apiv1.PhaseFailed || rep.Health == apiv1.HealthFailed || rep.Health == apiv1.HealthTimeout):
				c.Phase, c.DoneAt, c.FirstHealthyAt = apiv1.ClusterFailed, now, time.Time{}
				c.Message = fmt.Sprintf("%s at %s: phase %s, health %s", n.Version, short(rep.Revision), rep.Phase, rep.Health)
				evs = append(evs, n.event(c.Cluster, now, "cluster "+c.Cluster+" failed: "+c.Message))
			case atVersion && rep.Phase == apiv1.PhaseSynced && rep.Health == apiv1.HealthCurrent:
				if c.FirstHealthyAt.IsZero() {
					c.FirstHealthyAt, c.Phase = now, apiv1.ClusterSoaking
				}
				if now.Sub(c.FirstHealthyAt) >= soak {
					c.Phase, c.DoneAt = apiv1.ClusterVerified, now
					evs = append(evs, n.event(c.Cluster, now, fmt.Sprintf("cluster %s verified: %s Synced and Current for %s", c.Cluster, n.Version, soak)))
				}
			default:
				c.FirstHealthyAt, c.Phase = time.Time{}, apiv1.ClusterProgressing
				if now.Sub(c.WrittenAt) > deadline {
					c.Phase, c.DoneAt = apiv1.ClusterFailed, now
					c.Message = fmt.Sprintf("no Synced and Current report of %s at %s or later within the progress deadline of %s (last: %s)",
						n.Version, short(commit), deadline, describe(rep))
					evs = append(evs, n.event(c.Cluster, now, "cluster "+c.Cluster+" failed: "+c.Message))
				}
			}
		}
		if c.Phase == apiv1.ClusterFailed {
			failed++
		}
	}
	if failed > w.MaxFailures {
		reason := fmt.Sprintf("wave %s: %d clusters failed, more than its maxFailures of %d", w.Name, failed, w.MaxFailures)
		if n.Policy.OnFailure == string(repo.OnFailurePause) {
			n.State, n.Reason = apiv1.RolloutPaused, reason+"; paused (onFailure: pause)"
			return append(evs, n.event("", now, "rollout "+n.ID+" paused: "+reason))
		}
		return append(evs, n.startRollback(now, reason)...)
	}
	return evs
}

// nextStep finishes the current wave when every cluster of it is done, or plans
// the next batch of it.
func (n *run) nextStep(now time.Time) []apiv1.Event {
	var evs []apiv1.Event
	for n.Wave < len(n.Waves) {
		pending, inflight := n.waveCounts(n.Wave)
		if len(pending) == 0 && inflight == 0 {
			w := &n.Waves[n.Wave]
			w.DoneAt = now
			evs = append(evs, n.event("", now, fmt.Sprintf("rollout %s: wave %s done", n.ID, w.Name)))
			n.Wave++
			continue
		}
		if len(pending) == 0 {
			return evs
		}
		w := &n.Waves[n.Wave]
		if w.StartedAt.IsZero() && w.Approval == string(repo.ApprovalManual) && w.ApprovedBy == "" {
			n.State, n.Reason = apiv1.RolloutAwaitingApproval, "wave "+w.Name+" waits for an approval"
			return append(evs, n.event("", now, "rollout "+n.ID+": wave "+w.Name+" waits for an approval"))
		}
		if open, next := parseWindow(n.Policy.Window).Open(now); !open {
			n.Reason = fmt.Sprintf("wave %s waits for the window %s (opens %s)", w.Name, n.Policy.Window, next.UTC().Format(time.RFC3339))
			return evs
		}
		n.Reason = ""
		batch := pending
		if w.MaxParallel > 0 {
			room := w.MaxParallel - inflight
			if room <= 0 {
				return evs
			}
			batch = pending[:min(room, len(pending))]
		}
		step := apiv1.RolloutStep{Kind: apiv1.StepForward, Wave: n.Wave, Clusters: batch, At: now}
		n.Steps = append(n.Steps, step)
		for _, name := range batch {
			c := n.cluster(name)
			c.Phase, c.Step = apiv1.ClusterWriting, len(n.Steps)-1
		}
		return evs
	}
	n.State, n.FinishedAt, n.Reason = apiv1.RolloutSucceeded, now, ""
	return append(evs, n.event("", now, fmt.Sprintf("rollout %s succeeded: %s at %s on every wave", n.ID, n.App, n.Version)))
}

// waveCounts returns the pending clusters of wave i (sorted) and how many of it
// are written but not done.
func (n *run) waveCounts(i int) (pending []string, inflight int) {
	for _, c := range n.Clusters {
		if c.Wave != i {
			continue
		}
		switch c.Phase {
		case apiv1.ClusterPending:
			pending = append(pending, c.Cluster)
		case apiv1.ClusterWriting, apiv1.ClusterProgressing, apiv1.ClusterSoaking:
			inflight++
		}
	}
	return pending, inflight
}

// startRollback plans the rollback commit of every cluster the run wrote.
func (n *run) startRollback(now time.Time, reason string) []apiv1.Event {
	var touched []string
	for _, c := range n.Clusters {
		switch c.Phase {
		case apiv1.ClusterProgressing, apiv1.ClusterSoaking, apiv1.ClusterVerified, apiv1.ClusterFailed:
			touched = append(touched, c.Cluster)
		}
	}
	n.Reason = reason
	evs := []apiv1.Event{n.event("", now, fmt.Sprintf("rollout %s rolling back %d clusters: %s", n.ID, len(touched), reason))}
	if len(touched) == 0 {
		n.State, n.FinishedAt = apiv1.RolloutRolledBack, now
		return evs
	}
	n.State = apiv1.RolloutRollingBack
	n.Steps = append(n.Steps, apiv1.RolloutStep{Kind: apiv1.StepRollback, Clusters: touched, At: now})
	for _, name := range touched {
		n.cluster(name).Step = len(n.Steps) - 1
	}
	return evs
}

// watchRollback waits for the rolled-back clusters to report their old version
// Synced and Current, or for the deadline.
func (n *run) watchRollback(obs map[string]Observation, deadline time.Duration, now time.Time) []apiv1.Event {
	var evs []apiv1.Event
	waiting := 0
	var unhealthy []string
	for i := range n.Clusters {
		c := &n.Clusters[i]
		if c.Phase != apiv1.ClusterRollingBack {
			continue
		}
		o := obs[c.Cluster]
		if o.Report != nil {
			c.Reported = o.Report
		}
		rep := o.Report
		switch {
		case c.Previous == "":
			// The app was not on the cluster before: the rollback removed it.
			c.Phase, c.DoneAt = apiv1.ClusterRolledBack, now
		case rep != nil && rep.Version == c.Previous && o.AtCommit && rep.Phase == apiv1.PhaseSynced && rep.Health == apiv1.HealthCurrent:
			c.Phase, c.DoneAt = apiv1.ClusterRolledBack, now
			evs = append(evs, n.event(c.Cluster, now, fmt.Sprintf("cluster %s rolled back to %s", c.Cluster, c.Previous)))
		case now.Sub(c.WrittenAt) > deadline:
			unhealthy = append(unhealthy, c.Cluster)
		default:
			waiting++
		}
	}
	if waiting > 0 {
		return evs
	}
	n.State, n.FinishedAt = apiv1.RolloutRolledBack, now
	msg := fmt.Sprintf("rollout %s rolled back", n.ID)
	if len(unhealthy) > 0 {
		n.Reason += fmt.Sprintf("; not healthy at the old version within %s: %s", deadline, strings.Join(unhealthy, ", "))
		msg += "; not healthy yet: " + strings.Join(unhealthy, ", ")
	}
	return append(evs, n.event("", now, msg))
}

// Act applies a person's action to run r.
func Act(r *apiv1.Rollout, action apiv1.RolloutAction, by string, now time.Time) (*apiv1.Rollout, []apiv1.Event, error) {
	n := clone(r)
	refuse := func(msg string) (*apiv1.Rollout, []apiv1.Event, error) {
		return nil, nil, &ActionError{ID: r.ID, Action: action, State: r.State, Msg: msg}
	}
	if PendingStep(r) >= 0 && (action == apiv1.ActionRollback || action == apiv1.ActionAbort) {
		return refuse("a commit of the run is being written; try again in a moment")
	}
	var msg string
	switch action {
	case apiv1.ActionPause:
		if n.State != apiv1.RolloutRunning && n.State != apiv1.RolloutAwaitingApproval {
			return refuse("only a running run can be paused")
		}
		n.State, n.Reason, msg = apiv1.RolloutPaused, "paused by "+by, "paused by "+by
	case apiv1.ActionResume:
		if n.State != apiv1.RolloutPaused {
			return refuse("only a paused run can be resumed")
		}
		n.State, n.Reason, msg = apiv1.RolloutRunning, "", "resumed by "+by
	case apiv1.ActionApprove:
		if n.State != apiv1.RolloutAwaitingApproval {
			return refuse("no wave waits for an approval")
		}
		n.Waves[n.Wave].ApprovedBy = by
		n.State, n.Reason, msg = apiv1.RolloutRunning, "", "wave "+n.Waves[n.Wave].Name+" approved by "+by
	case apiv1.ActionAbort:
		if !n.State.Active() {
			return refuse("the run is over")
		}
		n.State, n.FinishedAt, n.Reason, msg = apiv1.RolloutAborted, now, "aborted by "+by, "aborted by "+by+"; the clusters stay as they are"
	case apiv1.ActionRollback:
		if n.State == apiv1.RolloutRollingBack || n.State == apiv1.RolloutRolledBack {
			return refuse("the run is already rolled back")
		}
		n.FinishedAt = time.Time{}
		evs := n.startRollback(now, "rollback asked by "+by)
		return n.touch(now), evs, nil
	default:
		return refuse("unknown action")
	}
	return n.touch(now), []apiv1.Event{n.event("", now, "rollout "+n.ID+" "+msg)}, nil
}

// Override marks cluster as changed by a forced manual write during the run and
// pauses the run, so that a person decides what comes next.
func Override(r *apiv1.Rollout, cluster, by string, now time.Time) (*apiv1.Rollout, []apiv1.Event, error) {
	n := clone(r)
	c := n.cluster(cluster)
	if c == nil {
		return nil, nil, fmt.Errorf("rollout %s holds no cluster %s", r.ID, cluster)
	}
	c.Phase, c.DoneAt = apiv1.ClusterOverridden, now
	c.Message = "changed by " + by + " with --force during the run"
	if n.State == apiv1.RolloutRunning || n.State == apiv1.RolloutAwaitingApproval {
		n.State, n.Reason = apiv1.RolloutPaused, "paused: "+cluster+" was changed by "+by+" with --force"
	}
	return n.touch(now), []apiv1.Event{n.event(cluster, now, "rollout "+n.ID+": "+cluster+" overridden by "+by+"; run paused")}, nil
}

// Holds reports whether active run r holds cluster: the run will write it, is
// writing it, or waits on it.
func Holds(r *apiv1.Rollout, cluster string) bool {
	if !r.State.Active() {
		return false
	}
	for _, c := range r.Clusters {
		if c.Cluster == cluster {
			switch c.Phase {
			case apiv1.ClusterSkipped, apiv1.ClusterOverridden, apiv1.ClusterConflict, apiv1.ClusterRolledBack:
				return false
			}
			return true
		}
	}
	return false
}

// run is a Rollout with the planner's helpers.
type run apiv1.Rollout

func clone(r *apiv1.Rollout) run {
	n := run(*r)
	n.Waves = slices.Clone(r.Waves)
	n.Clusters = slices.Clone(r.Clusters)
	n.Steps = slices.Clone(r.Steps)
	for i := range n.Steps {
		n.Steps[i].Clusters = slices.Clone(r.Steps[i].Clusters)
	}
	return n
}

func (n *run) cluster(name string) *apiv1.RolloutCluster {
	for i := range n.Clusters {
		if n.Clusters[i].Cluster == name {
			return &n.Clusters[i]
		}
	}
	return nil
}

func (n *run) touch(now time.Time) *apiv1.Rollout {
	n.UpdatedAt = now
	n.Generation++
	r := apiv1.Rollout(*n)
	return &r
}

func (n *run) event(cluster string, now time.Time, msg string) apiv1.Event {
	return apiv1.Event{Cluster: cluster, App: n.App, Type: apiv1.EventRollout, Time: now, Version: n.Version, Message: msg}
}

// equalRuns compares the parts of two runs Advance may change.
func equalRuns(a *apiv1.Rollout, b *run) bool {
	if a.State != b.State || a.Reason != b.Reason || a.Wave != b.Wave || len(a.Steps) != len(b.Steps) || !a.FinishedAt.Equal(b.FinishedAt) {
		return false
	}
	for i := range a.Waves {
		if !a.Waves[i].DoneAt.Equal(b.Waves[i].DoneAt) {
			return false
		}
	}
	for i := range a.Clusters {
		x, y := a.Clusters[i], b.Clusters[i]
		if x.Phase != y.Phase || !x.FirstHealthyAt.Equal(y.FirstHealthyAt) || x.Message != y.Message || !sameReport(x.Reported, y.Reported) {
			return false
		}
	}
	return true
}

func sameReport(a, b *apiv1.RolloutReport) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Version == b.Version && a.Revision == b.Revision && a.Phase == b.Phase && a.Health == b.Health
}

func describe(rep *apiv1.RolloutReport) string {
	if rep == nil {
		return "no report"
	}
	return fmt.Sprintf("%s at %s, %s, %s", orNone(rep.Version), short(rep.Revision), rep.Phase, rep.Health)
}

func short(rev string) string {
	if len(rev) > 12 {
		return rev[:12]
	}
	return rev
}

func orNone(v string) string {
	if v == "" {
		return "(none)"
	}
	return v
}

// Unplan drops step i, which could not be written for a reason retrying will not
// fix (a cluster directory removed, a file the write would leave invalid), and
// pauses the run with that reason: a person fixes the repository and resumes, or
// rolls back or aborts.
func Unplan(r *apiv1.Rollout, i int, reason string, now time.Time) (*apiv1.Rollout, []apiv1.Event) {
	n := clone(r)
	st := n.Steps[i]
	n.Steps = n.Steps[:i]
	for _, name := range st.Clusters {
		c := n.cluster(name)
		if st.Kind == apiv1.StepForward {
			c.Phase, c.Step = apiv1.ClusterPending, -1
		} else {
			c.Step = lastStepOf(n.Steps, name)
		}
	}
	n.State, n.Reason, n.FinishedAt = apiv1.RolloutPaused, "paused: commit not written: "+reason, time.Time{}
	return n.touch(now), []apiv1.Event{n.event("", now, "rollout "+n.ID+" paused: "+Subject(r, i)+": "+reason)}
}

// lastStepOf returns the index of the last step writing cluster, or -1.
func lastStepOf(steps []apiv1.RolloutStep, cluster string) int {
	for i := len(steps) - 1; i >= 0; i-- {
		if slices.Contains(steps[i].Clusters, cluster) {
			return i
		}
	}
	return -1
}
