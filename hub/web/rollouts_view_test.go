package web

import (
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
)

func TestSoakRemaining(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	tests := map[string]struct {
		cluster  apiv1.RolloutCluster
		soak     time.Duration
		wantOK   bool
		wantEnd  time.Time
		wantLeft time.Duration
		wantText string
	}{
		"soaking, half done": {apiv1.RolloutCluster{Phase: apiv1.ClusterSoaking, FirstHealthyAt: now.Add(-5 * time.Minute)}, 10 * time.Minute,
			true, now.Add(5 * time.Minute), 5 * time.Minute, "5m00s left"},
		"soaking, over (the hub verifies next)": {apiv1.RolloutCluster{Phase: apiv1.ClusterSoaking, FirstHealthyAt: now.Add(-time.Hour)}, 10 * time.Minute,
			true, now.Add(-50 * time.Minute), 0, "verifying…"},
		"soaking, hours left": {apiv1.RolloutCluster{Phase: apiv1.ClusterSoaking, FirstHealthyAt: now.Add(-3 * time.Second)}, 2 * time.Hour,
			true, now.Add(2*time.Hour - 3*time.Second), 2*time.Hour - 3*time.Second, "1h59m57s left"},
		"soaking, seconds left": {apiv1.RolloutCluster{Phase: apiv1.ClusterSoaking, FirstHealthyAt: now.Add(-18 * time.Second)}, time.Minute,
			true, now.Add(42 * time.Second), 42 * time.Second, "42s left"},
		"soaking without a healthy time": {apiv1.RolloutCluster{Phase: apiv1.ClusterSoaking}, time.Minute, false, time.Time{}, 0, ""},
		"progressing":                    {apiv1.RolloutCluster{Phase: apiv1.ClusterProgressing, FirstHealthyAt: now}, time.Minute, false, time.Time{}, 0, ""},
		"verified":                       {apiv1.RolloutCluster{Phase: apiv1.ClusterVerified, FirstHealthyAt: now.Add(-time.Hour)}, time.Minute, false, time.Time{}, 0, ""},
	}
	for name, tc := range tests {
		end, left, ok := soakRemaining(tc.cluster, tc.soak, now)
		if ok != tc.wantOK || !end.Equal(tc.wantEnd) || left != tc.wantLeft {
			t.Errorf("%s: soakRemaining = %s, %s, %v; want %s, %s, %v", name, end, left, ok, tc.wantEnd, tc.wantLeft, tc.wantOK)
		}
		if ok && leftText(left) != tc.wantText {
			t.Errorf("%s: leftText(%s) = %q, want %q", name, left, leftText(left), tc.wantText)
		}
	}
}

func TestRolloutBadges(t *testing.T) {
	phases := map[apiv1.ClusterPhase]string{
		apiv1.ClusterPending: "muted", apiv1.ClusterWriting: "progress", apiv1.ClusterProgressing: "progress",
		apiv1.ClusterSoaking: "soak", apiv1.ClusterVerified: "ok", apiv1.ClusterFailed: "failed",
		apiv1.ClusterSkipped: "muted", apiv1.ClusterOverridden: "warn", apiv1.ClusterRollingBack: "warn",
		apiv1.ClusterRolledBack: "drift", apiv1.ClusterConflict: "failed", "Exploded": "muted",
	}
	for p, want := range phases {
		if b := clusterPhaseBadge(p); b.Class != want || b.Text == "" || b.Glyph == "" {
			t.Errorf("phase %s: %+v, want class %s with text and glyph", p, b, want)
		}
	}
	states := map[apiv1.RolloutState]string{
		apiv1.RolloutRunning: "progress", apiv1.RolloutAwaitingApproval: "warn", apiv1.RolloutPaused: "warn",
		apiv1.RolloutRollingBack: "failed", apiv1.RolloutSucceeded: "ok", apiv1.RolloutRolledBack: "failed",
		apiv1.RolloutAborted: "muted", "Lost": "muted",
	}
	for s, want := range states {
		if b := rolloutStateBadge(s); b.Class != want || b.Text == "" {
			t.Errorf("state %s: %+v, want class %s with text", s, b, want)
		}
	}
	texts := map[string]struct{ got, want string }{
		"no soak":      {soakText(0), "none"},
		"minutes":      {soakText(600), "10m"},
		"hours":        {soakText(7200), "2h"},
		"hour minutes": {soakText(5400), "1h30m"},
		"seconds":      {soakText(45), "45s"},
		"odd":          {soakText(61), "1m1s"},
	}
	for name, tc := range texts {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", name, tc.got, tc.want)
		}
	}
}

// sampleRun is a run in wave 2 of 2: dev verified, prod-1 soaking, prod-2 failed.
func sampleRun(now time.Time) *apiv1.Rollout {
	return &apiv1.Rollout{
		ID: "web-abc123", App: "web", Version: "2.0", State: apiv1.RolloutRunning, Wave: 1, Revision: strings.Repeat("a", 40),
		Policy: apiv1.RolloutPolicy{ProgressDeadlineSeconds: 300, OnFailure: "rollback"},
		Waves: []apiv1.RolloutWave{
			{Name: "dev", Clusters: []string{"dev-1"}, SoakSeconds: 60, StartedAt: now.Add(-time.Hour), DoneAt: now.Add(-30 * time.Minute)},
			{Name: "prod", Clusters: []string{"prod-1", "prod-2"}, SoakSeconds: 600, MaxFailures: 1, Approval: "manual", ApprovedBy: "jane", StartedAt: now.Add(-10 * time.Minute)},
		},
		Clusters: []apiv1.RolloutCluster{
			{Cluster: "dev-1", Wave: 0, Phase: apiv1.ClusterVerified, Previous: "1.0", Step: 0,
				Reported: &apiv1.RolloutReport{Version: "2.0", Revision: strings.Repeat("b", 40), Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent, ReceivedAt: now}},
			{Cluster: "prod-1", Wave: 1, Phase: apiv1.ClusterSoaking, Previous: "1.0", Step: 1, FirstHealthyAt: now.Add(-4 * time.Minute),
				Reported: &apiv1.RolloutReport{Version: "2.0", Revision: strings.Repeat("c", 40), Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent, ReceivedAt: now}},
			{Cluster: "prod-2", Wave: 1, Phase: apiv1.ClusterFailed, Step: 1, Message: "health Failed at the run's commit"},
			{Cluster: "lost", Wave: 7, Phase: apiv1.ClusterPending, Step: -1},
		},
		Steps: []apiv1.RolloutStep{
			{Kind: apiv1.StepForward, Wave: 0, Clusters: []string{"dev-1"}, Commit: strings.Repeat("b", 40), At: now.Add(-time.Hour)},
			{Kind: apiv1.StepForward, Wave: 1, Clusters: []string{"prod-1", "prod-2"}, At: now.Add(-10 * time.Minute)},
		},
		CreatedBy: "jane", CreatedAt: now.Add(-time.Hour), UpdatedAt: now, Generation: 9,
	}
}

func TestRolloutView(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	b := rolloutView(sampleRun(now), now, true)
	if b.Wave != "2/2 prod" || !b.Active || b.State.Text != "Running" || b.ProgressDeadline != "5m" || len(b.Waves) != 2 {
		t.Fatalf("header: %+v", b)
	}
	if b.Waves[0].Current || !b.Waves[1].Current || b.Waves[1].Soak != "10m" || b.Waves[1].ApprovedBy != "jane" {
		t.Errorf("waves: %+v", b.Waves)
	}
	cells := map[string]rolloutCellView{}
	for _, w := range b.Waves {
		for _, c := range w.Cells {
			cells[c.Cluster] = c
		}
	}
	tests := map[string]struct {
		class, left, commit, reported, message string
	}{
		"dev-1":  {class: "ok", commit: strings.Repeat("b", 40), reported: "2.0"},
		"prod-1": {class: "soak", left: "6m00s left", reported: "2.0"},
		"prod-2": {class: "failed", message: "health Failed at the run's commit"},
	}
	for name, tc := range tests {
		c, ok := cells[name]
		if !ok {
			t.Errorf("%s: not in the grid", name)
			continue
		}
		rep := ""
		if c.Reported != nil {
			rep = c.Reported.Version
		}
		if c.Phase.Class != tc.class || c.SoakLeft != tc.left || c.Commit != tc.commit || rep != tc.reported || c.Message != tc.message {
			t.Errorf("%s: %+v, want %+v", name, c, tc)
		}
	}
	if _, ok := cells["lost"]; ok {
		t.Errorf("a cluster of a wave the run does not have is in the grid")
	}
	if !cells["prod-1"].SoakEnd.Equal(now.Add(6 * time.Minute)) {
		t.Errorf("prod-1 soak ends %s, want %s", cells["prod-1"].SoakEnd, now.Add(6*time.Minute))
	}
	if len(b.Steps) != 2 || b.Steps[0].Wave != "dev" || b.Steps[1].Commit != "" {
		t.Errorf("steps: %+v", b.Steps)
	}

	// A finished run, and one with no waves: no current wave, nothing invented.
	done := sampleRun(now)
	done.State, done.Wave = apiv1.RolloutSucceeded, 2
	if b := rolloutView(done, now, false); b.Wave != "done" || b.Active || b.Waves[1].Current {
		t.Errorf("finished run: wave %q active %v current %v", b.Wave, b.Active, b.Waves[1].Current)
	}
	empty := &apiv1.Rollout{ID: "web-x", State: apiv1.RolloutAborted}
	if b := rolloutView(empty, now, false); b.Wave != "done" || len(b.Waves) != 0 || len(b.Steps) != 0 {
		t.Errorf("empty run: %+v", b)
	}
}

func TestRolloutFingerprintIgnoresVolatileFields(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	fp := func(mut func(*apiv1.Rollout)) string {
		r := sampleRun(now)
		mut(r)
		return fingerprint(rolloutKey(r))
	}
	base := fp(func(*apiv1.Rollout) {})
	same := map[string]func(*apiv1.Rollout){
		"generation":  func(r *apiv1.Rollout) { r.Generation++ },
		"update time": func(r *apiv1.Rollout) { r.UpdatedAt = r.UpdatedAt.Add(time.Second) },
		"report time": func(r *apiv1.Rollout) { r.Clusters[0].Reported.ReceivedAt = now.Add(time.Minute) },
	}
	for name, mut := range same {
		if fp(mut) != base {
			t.Errorf("%s changed the fingerprint", name)
		}
	}
	differs := map[string]func(*apiv1.Rollout){
		"state":           func(r *apiv1.Rollout) { r.State = apiv1.RolloutPaused },
		"phase":           func(r *apiv1.Rollout) { r.Clusters[1].Phase = apiv1.ClusterVerified },
		"reported health": func(r *apiv1.Rollout) { r.Clusters[0].Reported.Health = apiv1.HealthFailed },
		"a commit":        func(r *apiv1.Rollout) { r.Steps[1].Commit = strings.Repeat("d", 40) },
	}
	for name, mut := range differs {
		if fp(mut) == base {
			t.Errorf("%s did not change the fingerprint", name)
		}
	}
	// rolloutKey copies: the run itself keeps its volatile fields.
	r := sampleRun(now)
	_ = rolloutKey(r)
	if r.Generation != 9 || r.Clusters[0].Reported.ReceivedAt.IsZero() {
		t.Errorf("rolloutKey changed the run: %+v", r)
	}
}

func TestHeldBy(t *testing.T) {
	now := time.Now()
	active := sampleRun(now)
	active.Clusters = append(active.Clusters, apiv1.RolloutCluster{Cluster: "skipped", Wave: 1, Phase: apiv1.ClusterSkipped})
	finished := sampleRun(now)
	finished.ID, finished.App, finished.State = "api-old", "api", apiv1.RolloutSucceeded
	got := heldBy(&apiv1.RolloutList{Rollouts: []apiv1.Rollout{*active, *finished}})
	want := map[[2]string]string{{"dev-1", "web"}: "web-abc123", {"prod-1", "web"}: "web-abc123", {"prod-2", "web"}: "web-abc123", {"lost", "web"}: "web-abc123"}
	if len(got) != len(want) {
		t.Fatalf("heldBy = %v, want %v", got, want)
	}
	for k, id := range want {
		if got[k] != id {
			t.Errorf("heldBy[%v] = %q, want %q", k, got[k], id)
		}
	}
}
