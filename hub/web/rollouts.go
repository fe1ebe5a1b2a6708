package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

// RolloutSource is what the rollout pages read: the runs (GET /api/v1/rollouts) and
// one run (GET /api/v1/rollouts/{id}). A Source that implements it gets the pages
// /rollouts and /rollouts/{id}, and its matrix marks the cells an active run holds.
type RolloutSource interface {
	// Rollouts returns at most limit runs of app ("" for all), only the active ones
	// when active is set, newest first; an error that is ErrNotFound or a not_found
	// *apiv1.ErrorResponse when the hub runs no rollouts.
	Rollouts(ctx context.Context, app string, active bool, limit int) (*apiv1.RolloutList, error)
	// Rollout returns run id; for an unknown run an error that is ErrNotFound or a
	// not_found *apiv1.ErrorResponse.
	Rollout(ctx context.Context, id string) (*apiv1.Rollout, error)
}

// rolloutLimit is how many runs the list page shows, and how many active runs the
// overview looks at for the cells they hold (one per app at most).
const rolloutLimit = 100

// rolloutsBody is the data of the list of runs.
type rolloutsBody struct {
	Runs []rolloutRow
}

// rolloutRow is one run in the list.
type rolloutRow struct {
	ID, App, Version string
	State            badge
	// Wave says where the run stands: "2/3 canary", or "done".
	Wave    string
	Started time.Time
	By      string
}

// rolloutBody is the data of one run's page.
type rolloutBody struct {
	ID, App, Version string
	State            badge
	Active           bool
	Reason           string
	Wave             string
	Revision         string
	ProgressDeadline string
	OnFailure        string
	Window           string
	By               string
	Started          time.Time
	Updated          time.Time
	Finished         time.Time
	Waves            []waveView
	Steps            []stepView
	// History tells whether the commit pages exist (the Source is a HistorySource).
	History bool
}

// waveView is one row of a run's grid.
type waveView struct {
	// Number counts from 1.
	Number      int
	Name        string
	Current     bool
	Soak        string
	MaxFailures int
	MaxParallel int
	Approval    string
	ApprovedBy  string
	Started     time.Time
	Done        time.Time
	Cells       []rolloutCellView
}

// rolloutCellView is one cluster of a run's grid.
type rolloutCellView struct {
	Cluster string
	Phase   badge
	// Previous is the version before the run wrote it; "" when the app was not
	// listed or the run has not written it yet.
	Previous string
	// Reported is the last report the run looked at; nil when none.
	Reported *reportView
	// SoakEnd is when a soaking cluster's soak ends (zero unless Soaking);
	// SoakLeft is the time left then, as text. The script counts down to SoakEnd.
	SoakEnd  time.Time
	SoakLeft string
	Message  string
	// Commit is the commit that last wrote it; "" before.
	Commit string
}

// reportView is a cluster's report as a run's grid shows it.
type reportView struct {
	Version  string
	Revision string
	Phase    badge
	Health   badge
	Received time.Time
}

// stepView is one commit of a run.
type stepView struct {
	Number   int
	Kind     string
	Wave     string
	Clusters []string
	Commit   string
	At       time.Time
}

// rolloutStateBadge labels a run's state; the colour repeats the text.
func rolloutStateBadge(s apiv1.RolloutState) badge {
	switch s {
	case apiv1.RolloutRunning:
		return badge{"Running", "progress", "↻"}
	case apiv1.RolloutAwaitingApproval:
		return badge{"Awaiting approval", "warn", "◇"}
	case apiv1.RolloutPaused:
		return badge{"Paused", "warn", "‖"}
	case apiv1.RolloutRollingBack:
		return badge{"Rolling back", "failed", "↺"}
	case apiv1.RolloutSucceeded:
		return badge{"Succeeded", "ok", "✓"}
	case apiv1.RolloutRolledBack:
		return badge{"Rolled back", "failed", "↺"}
	case apiv1.RolloutAborted:
		return badge{"Aborted", "muted", "■"}
	}
	return badge{string(s), "muted", "?"}
}

// clusterPhaseBadge labels a cluster's phase in a run; its class colours the cell.
func clusterPhaseBadge(p apiv1.ClusterPhase) badge {
	switch p {
	case apiv1.ClusterPending:
		return badge{"Pending", "muted", "…"}
	case apiv1.ClusterWriting:
		return badge{"Writing", "progress", "✎"}
	case apiv1.ClusterProgressing:
		return badge{"Progressing", "progress", "↻"}
	case apiv1.ClusterSoaking:
		return badge{"Soaking", "soak", "◔"}
	case apiv1.ClusterVerified:
		return badge{"Verified", "ok", "✓"}
	case apiv1.ClusterFailed:
		return badge{"Failed", "failed", "✕"}
	case apiv1.ClusterSkipped:
		return badge{"Skipped", "muted", "⤼"}
	case apiv1.ClusterOverridden:
		return badge{"Overridden", "warn", "!"}
	case apiv1.ClusterRollingBack:
		return badge{"Rolling back", "warn", "↺"}
	case apiv1.ClusterRolledBack:
		return badge{"Rolled back", "drift", "↺"}
	case apiv1.ClusterConflict:
		return badge{"Conflict", "failed", "⚠"}
	}
	return badge{string(p), "muted", "?"}
}

// soakRemaining returns when a soaking cluster's soak ends and how much of it is
// left at now (never negative); ok is false unless the cluster is Soaking since a
// known time.
func soakRemaining(c apiv1.RolloutCluster, soak time.Duration, now time.Time) (end time.Time, left time.Duration, ok bool) {
	if c.Phase != apiv1.ClusterSoaking || c.FirstHealthyAt.IsZero() {
		return time.Time{}, 0, false
	}
	end = c.FirstHealthyAt.Add(soak)
	return end, max(end.Sub(now), 0), true
}

// leftText formats the time left of a soak, like the script does: "1h02m03s left",
// "4m05s left", "42s left"; "verifying…" once it is over (the hub verifies the
// cluster at its next look).
func leftText(d time.Duration) string {
	s := int64(d / time.Second)
	switch {
	case s <= 0:
		return "verifying…"
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm%02ds left", s/3600, s/60%60, s%60)
	case s >= 60:
		return fmt.Sprintf("%dm%02ds left", s/60, s%60)
	}
	return fmt.Sprintf("%ds left", s)
}

// soakText formats a wave's soak: "none", "10m", "1h30m", "45s".
func soakText(seconds int64) string {
	if seconds <= 0 {
		return "none"
	}
	d := time.Duration(seconds) * time.Second
	switch {
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	case d%time.Minute == 0 && d >= time.Hour:
		return fmt.Sprintf("%dh%dm", int64(d/time.Hour), int64(d%time.Hour/time.Minute))
	case d%time.Minute == 0:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
	return d.String()
}

// waveText says where run r stands: "2/3 canary", "done" when every wave is.
func waveText(r *apiv1.Rollout) string {
	if r.Wave < 0 || r.Wave >= len(r.Waves) {
		return "done"
	}
	return fmt.Sprintf("%d/%d %s", r.Wave+1, len(r.Waves), r.Waves[r.Wave].Name)
}

func rolloutRows(list *apiv1.RolloutList) []rolloutRow {
	out := make([]rolloutRow, 0, len(list.Rollouts))
	for i := range list.Rollouts {
		r := &list.Rollouts[i]
		out = append(out, rolloutRow{
			ID: r.ID, App: r.App, Version: r.Version, State: rolloutStateBadge(r.State),
			Wave: waveText(r), Started: r.CreatedAt, By: r.CreatedBy,
		})
	}
	return out
}

// rolloutView lays a run out as its page shows it at now: one row per wave with
// its clusters, then its commits.
func rolloutView(r *apiv1.Rollout, now time.Time, history bool) rolloutBody {
	b := rolloutBody{
		ID: r.ID, App: r.App, Version: r.Version, State: rolloutStateBadge(r.State), Active: r.State.Active(),
		Reason: r.Reason, Wave: waveText(r), Revision: r.Revision,
		OnFailure: r.Policy.OnFailure, Window: r.Policy.Window, By: r.CreatedBy,
		Started: r.CreatedAt, Updated: r.UpdatedAt, Finished: r.FinishedAt, History: history,
	}
	if r.Policy.ProgressDeadlineSeconds > 0 {
		b.ProgressDeadline = soakText(r.Policy.ProgressDeadlineSeconds)
	}
	for i, w := range r.Waves {
		b.Waves = append(b.Waves, waveView{
			Number: i + 1, Name: w.Name, Current: i == r.Wave && r.State.Active(), Soak: soakText(w.SoakSeconds),
			MaxFailures: w.MaxFailures, MaxParallel: w.MaxParallel, Approval: w.Approval, ApprovedBy: w.ApprovedBy,
			Started: w.StartedAt, Done: w.DoneAt,
		})
	}
	for _, c := range r.Clusters {
		if c.Wave < 0 || c.Wave >= len(b.Waves) {
			continue // a run always names a wave it has; nothing to place it in otherwise
		}
		cv := rolloutCellView{Cluster: c.Cluster, Phase: clusterPhaseBadge(c.Phase), Previous: c.Previous, Message: c.Message}
		if c.Step >= 0 && c.Step < len(r.Steps) {
			cv.Commit = r.Steps[c.Step].Commit
		}
		if rep := c.Reported; rep != nil {
			cv.Reported = &reportView{
				Version: rep.Version, Revision: rep.Revision, Phase: phaseBadge(rep.Phase), Health: healthBadge(rep.Health),
				Received: rep.ReceivedAt,
			}
		}
		if end, left, ok := soakRemaining(c, time.Duration(r.Waves[c.Wave].SoakSeconds)*time.Second, now); ok {
			cv.SoakEnd, cv.SoakLeft = end, leftText(left)
		}
		b.Waves[c.Wave].Cells = append(b.Waves[c.Wave].Cells, cv)
	}
	for i, s := range r.Steps {
		sv := stepView{Number: i, Kind: string(s.Kind), Clusters: s.Clusters, Commit: s.Commit, At: s.At}
		if s.Kind == apiv1.StepForward && s.Wave >= 0 && s.Wave < len(r.Waves) {
			sv.Wave = r.Waves[s.Wave].Name
		}
		b.Steps = append(b.Steps, sv)
	}
	return b
}

// rolloutKey is the part of a run that its page's fingerprint covers: all of it but
// what changes without the page changing (the generation, the update time, the
// time of each report).
func rolloutKey(r *apiv1.Rollout) *apiv1.Rollout {
	k := *r
	k.Generation, k.UpdatedAt = 0, time.Time{}
	k.Clusters = make([]apiv1.RolloutCluster, len(r.Clusters))
	for i, c := range r.Clusters {
		if c.Reported != nil {
			rep := *c.Reported
			rep.ReceivedAt = time.Time{}
			c.Reported = &rep
		}
		k.Clusters[i] = c
	}
	return &k
}

// rolloutListKey is the part of the runs the list page's fingerprint covers.
func rolloutListKey(list *apiv1.RolloutList) []rolloutRow { return rolloutRows(list) }

// heldBy returns, per cluster and app, the ID of the active run holding that app on
// that cluster: a run holds its clusters from its start until they are done with,
// except those it left alone (skipped, overridden, conflict) or rolled back.
func heldBy(list *apiv1.RolloutList) map[[2]string]string {
	out := map[[2]string]string{}
	for _, r := range list.Rollouts {
		if !r.State.Active() {
			continue
		}
		for _, c := range r.Clusters {
			switch c.Phase {
			case apiv1.ClusterSkipped, apiv1.ClusterOverridden, apiv1.ClusterConflict, apiv1.ClusterRolledBack:
				continue
			}
			out[[2]string{c.Cluster, r.App}] = r.ID
		}
	}
	return out
}

// heldKey lists held in a stable order, for a fingerprint.
func heldKey(held map[[2]string]string) []string {
	out := make([]string, 0, len(held))
	for k, id := range held {
		out = append(out, k[0]+"/"+k[1]+"="+id)
	}
	slices.Sort(out)
	return out
}

func (h *handler) rolloutsPage(w http.ResponseWriter, r *http.Request) {
	if h.rollouts == nil {
		h.notFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ReadTimeout)
	defer cancel()
	list, err := h.rollouts.Rollouts(ctx, "", false, rolloutLimit)
	if isNotFound(err) {
		h.renderError(w, http.StatusNotFound, "Rollouts are not enabled", "This hub runs no rollouts.")
		return
	}
	if err != nil {
		h.sourceError(w, r, fmt.Errorf("rollouts: %w", err))
		return
	}
	h.render(w, http.StatusOK, "rollouts", pageData{
		Title: "Rollouts", Section: "rollouts", Version: fingerprint(rolloutListKey(list)),
		Stream: "/events/stream?" + url.Values{"rollouts": {"all"}}.Encode(),
		PollMs: h.opts.FallbackPoll.Milliseconds(), Body: rolloutsBody{Runs: rolloutRows(list)},
	})
}

func (h *handler) rolloutPage(w http.ResponseWriter, r *http.Request) {
	if h.rollouts == nil {
		h.notFound(w, r)
		return
	}
	id := r.PathValue("id")
	if !apiv1.IsRolloutID(id) {
		h.notFound(w, r)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.ReadTimeout)
	defer cancel()
	run, err := h.rollouts.Rollout(ctx, id)
	if isNotFound(err) {
		h.renderError(w, http.StatusNotFound, "No such rollout",
			fmt.Sprintf("The hub has no rollout %q.", id))
		return
	}
	if err != nil {
		h.sourceError(w, r, fmt.Errorf("rollout %s: %w", id, err))
		return
	}
	_, history := h.src.(HistorySource)
	h.render(w, http.StatusOK, "rollout", pageData{
		Title: "Rollout " + id, Section: "rollouts", Version: fingerprint(rolloutKey(run)),
		Stream: "/events/stream?" + url.Values{"rollout": {id}}.Encode(),
		PollMs: h.opts.FallbackPoll.Milliseconds(), Body: rolloutView(run, h.opts.Now(), history),
	})
}
