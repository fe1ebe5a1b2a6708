package rollout

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/sync/repo"
)

var t0 = time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC) // a Monday

// fleet6 is six clusters over dev, prod-eu and prod-us.
var fleet6 = Fleet{
	Revision: "base",
	Apps:     []string{"web"},
	Labels: map[string]map[string]string{
		"dev-1": {"env": "dev"}, "dev-2": {"env": "dev"},
		"eu-1": {"env": "prod", "region": "eu"}, "eu-2": {"env": "prod", "region": "eu"},
		"us-1": {"env": "prod", "region": "us"}, "us-2": {"env": "prod", "region": "us"},
	},
}

func threeWaves() *repo.RolloutPolicy {
	return &repo.RolloutPolicy{
		Waves: []repo.WavePolicy{
			{Name: "dev", Selector: "env=dev", Soak: time.Minute},
			{Name: "eu", Selector: "region=eu", Soak: time.Minute},
			{Name: "us", Selector: "region=us", Soak: time.Minute},
		},
		ProgressDeadline: 10 * time.Minute, OnFailure: repo.OnFailureRollback,
	}
}

// sim drives a run the way the driver does, with a clock and reports set by the test.
type sim struct {
	t       *testing.T
	r       *apiv1.Rollout
	now     time.Time
	obs     map[string]Observation
	commits int
	events  []apiv1.Event
	// left are clusters the next commit leaves alone (someone changed them), with
	// the version found there.
	left map[string]string
}

func newSim(t *testing.T, p *repo.RolloutPolicy) *sim {
	t.Helper()
	r, err := NewRun("web-1", "web", "2.0", p, fleet6, "jane", t0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range r.Clusters {
		r.Clusters[i].Previous = "1.0"
	}
	return &sim{t: t, r: r, now: t0, obs: map[string]Observation{}}
}

// advance runs Advance, and writes a planned step as the driver would.
func (s *sim) advance() {
	s.t.Helper()
	next, evs := Advance(s.r, s.obs, s.now)
	s.events = append(s.events, evs...)
	if next != s.r && next.Generation != s.r.Generation+1 {
		s.t.Fatalf("generation %d -> %d", s.r.Generation, next.Generation)
	}
	s.r = next
	if i := PendingStep(s.r); i >= 0 {
		s.commits++
		rec, evs := Record(s.r, i, fmt.Sprintf("commit-%d", s.commits), s.left, s.now)
		s.events = append(s.events, evs...)
		s.r, s.left = rec, nil
	}
}

// report makes clusters report version at the newest commit, with phase and health.
func (s *sim) report(version string, phase apiv1.Phase, health apiv1.HealthStatus, clusters ...string) {
	for _, c := range clusters {
		s.obs[c] = Observation{AtCommit: true, Report: &apiv1.RolloutReport{Version: version, Revision: fmt.Sprintf("commit-%d", s.commits), Phase: phase, Health: health, ReceivedAt: s.now}}
	}
}

func (s *sim) healthy(version string, clusters ...string) {
	s.report(version, apiv1.PhaseSynced, apiv1.HealthCurrent, clusters...)
}

func (s *sim) wait(d time.Duration) { s.now = s.now.Add(d) }

func (s *sim) phases() map[string]apiv1.ClusterPhase {
	out := map[string]apiv1.ClusterPhase{}
	for _, c := range s.r.Clusters {
		out[c.Cluster] = c.Phase
	}
	return out
}

func (s *sim) want(state apiv1.RolloutState, wave int, phases map[string]apiv1.ClusterPhase) {
	s.t.Helper()
	if s.r.State != state || s.r.Wave != wave {
		s.t.Fatalf("run %s at wave %d (%s), want %s at wave %d", s.r.State, s.r.Wave, s.r.Reason, state, wave)
	}
	got := s.phases()
	for c, p := range phases {
		if got[c] != p {
			s.t.Fatalf("%s is %s, want %s (all: %v)", c, got[c], p, got)
		}
	}
}

func TestNewResolvesWavesAtTheHead(t *testing.T) {
	p := &repo.RolloutPolicy{Waves: []repo.WavePolicy{
		{Name: "canary", Clusters: []string{"eu-1"}},
		{Name: "prod", Selector: "env=prod", MaxFailures: repo.FailureBudget{Percent: 50}},
	}, ProgressDeadline: time.Minute, OnFailure: repo.OnFailurePause}
	r, err := NewRun("web-1", "web", "2.0", p, fleet6, "jane", t0)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Waves[0].Clusters, []string{"eu-1"}) || !slices.Equal(r.Waves[1].Clusters, []string{"eu-2", "us-1", "us-2"}) {
		t.Errorf("waves = %+v", r.Waves)
	}
	if r.Waves[1].MaxFailures != 1 || r.Policy.OnFailure != "pause" || r.Policy.ProgressDeadlineSeconds != 60 {
		t.Errorf("policy = %+v, wave 1 = %+v", r.Policy, r.Waves[1])
	}
	if len(r.Clusters) != 4 || r.Generation != 1 || r.State != apiv1.RolloutRunning {
		t.Errorf("run = %+v", r)
	}

	cases := map[string]struct {
		p    *repo.RolloutPolicy
		app  string
		want string
	}{
		"unknown app":       {threeWaves(), "api", "no directory apps/api/"},
		"missing cluster":   {&repo.RolloutPolicy{Waves: []repo.WavePolicy{{Name: "a", Clusters: []string{"gone"}}}}, "web", "names clusters that do not exist at base: gone"},
		"selects no one":    {&repo.RolloutPolicy{Waves: []repo.WavePolicy{{Name: "a", Selector: "env=lab"}}}, "web", "select no cluster"},
		"wrong app's label": {&repo.RolloutPolicy{Waves: []repo.WavePolicy{{Name: "a", Selector: "region=ap"}}}, "web", "select no cluster"},
	}
	for name, tc := range cases {
		_, err := NewRun("x", tc.app, "2.0", tc.p, fleet6, "jane", t0)
		var se *StartError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a StartError containing %q", name, err, tc.want)
		}
	}
}

// A wave starts only after every cluster of the previous one soaked; reports from
// before the wave's commit never count.
func TestThreeWavesRespectTheSoak(t *testing.T) {
	s := newSim(t, threeWaves())
	s.advance()
	s.want(apiv1.RolloutRunning, 0, map[string]apiv1.ClusterPhase{"dev-1": apiv1.ClusterProgressing, "dev-2": apiv1.ClusterProgressing, "eu-1": apiv1.ClusterPending})
	if s.commits != 1 || !slices.Equal(s.r.Steps[0].Clusters, []string{"dev-1", "dev-2"}) {
		t.Fatalf("steps = %+v", s.r.Steps)
	}

	// A report of the new version at an older revision (the argo-cd#29410 trap).
	s.obs["dev-1"] = Observation{AtCommit: false, Report: &apiv1.RolloutReport{Version: "2.0", Revision: "old", Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent}}
	s.wait(time.Second)
	s.advance()
	s.want(apiv1.RolloutRunning, 0, map[string]apiv1.ClusterPhase{"dev-1": apiv1.ClusterProgressing})

	s.healthy("2.0", "dev-1", "dev-2")
	s.wait(time.Second)
	s.advance()
	s.want(apiv1.RolloutRunning, 0, map[string]apiv1.ClusterPhase{"dev-1": apiv1.ClusterSoaking, "dev-2": apiv1.ClusterSoaking})
	soakStart := s.now

	// A flap restarts the soak clock of that cluster.
	s.wait(30 * time.Second)
	s.report("2.0", apiv1.PhaseSynced, apiv1.HealthInProgress, "dev-2")
	s.advance()
	s.want(apiv1.RolloutRunning, 0, map[string]apiv1.ClusterPhase{"dev-2": apiv1.ClusterProgressing})
	s.healthy("2.0", "dev-2")
	s.wait(time.Second)
	s.advance()
	dev2Healthy := s.now

	s.now = soakStart.Add(time.Minute)
	s.advance()
	s.want(apiv1.RolloutRunning, 0, map[string]apiv1.ClusterPhase{"dev-1": apiv1.ClusterVerified, "dev-2": apiv1.ClusterSoaking, "eu-1": apiv1.ClusterPending})
	if s.commits != 1 {
		t.Fatalf("wave eu was written before dev-2's soak ended")
	}
	s.now = dev2Healthy.Add(time.Minute)
	s.advance()
	s.want(apiv1.RolloutRunning, 1, map[string]apiv1.ClusterPhase{"dev-2": apiv1.ClusterVerified, "eu-1": apiv1.ClusterProgressing, "eu-2": apiv1.ClusterProgressing})
	if !s.r.Waves[1].StartedAt.Equal(s.r.Waves[0].DoneAt) || s.r.Waves[0].DoneAt.Before(dev2Healthy.Add(time.Minute)) {
		t.Errorf("wave eu started %s, wave dev done %s", s.r.Waves[1].StartedAt, s.r.Waves[0].DoneAt)
	}

	for _, wave := range [][]string{{"eu-1", "eu-2"}, {"us-1", "us-2"}} {
		s.healthy("2.0", wave...)
		s.wait(time.Second)
		s.advance()
		s.wait(time.Minute)
		s.advance()
	}
	s.want(apiv1.RolloutSucceeded, 3, map[string]apiv1.ClusterPhase{"us-1": apiv1.ClusterVerified, "us-2": apiv1.ClusterVerified})
	if s.commits != 3 || s.r.FinishedAt.IsZero() || s.r.State.Active() {
		t.Errorf("commits %d, run %+v", s.commits, s.r)
	}
	// Nothing changes any more: Advance returns the same run.
	if next, evs := Advance(s.r, s.obs, s.now.Add(time.Hour)); next != s.r || len(evs) != 0 {
		t.Errorf("a finished run changed")
	}
}

// A cluster of wave 2 that fails makes the run roll back every cluster it touched,
// in one commit, leaving alone the one someone else changed.
func TestFailureInWaveTwoRollsBackEveryTouchedCluster(t *testing.T) {
	s := newSim(t, threeWaves())
	s.advance()
	s.healthy("2.0", "dev-1", "dev-2")
	s.wait(time.Second)
	s.advance()
	s.wait(time.Minute)
	s.advance() // dev verified, eu written
	s.want(apiv1.RolloutRunning, 1, map[string]apiv1.ClusterPhase{"eu-1": apiv1.ClusterProgressing})

	s.healthy("2.0", "eu-1")
	s.report("2.0", apiv1.PhaseFailed, apiv1.HealthUnknown, "eu-2")
	s.wait(time.Second)
	s.left = map[string]string{"dev-2": "3.0"} // someone set dev-2 to 3.0 meanwhile
	s.advance()
	s.want(apiv1.RolloutRollingBack, 1, map[string]apiv1.ClusterPhase{
		"dev-1": apiv1.ClusterRollingBack, "dev-2": apiv1.ClusterConflict, "eu-1": apiv1.ClusterRollingBack,
		"eu-2": apiv1.ClusterRollingBack, "us-1": apiv1.ClusterPending,
	})
	rb := s.r.Steps[len(s.r.Steps)-1]
	if rb.Kind != apiv1.StepRollback || !slices.Equal(rb.Clusters, []string{"dev-1", "dev-2", "eu-1", "eu-2"}) || s.commits != 3 {
		t.Fatalf("rollback step %+v after %d commits", rb, s.commits)
	}
	if !strings.Contains(s.r.Reason, "wave eu: 1 clusters failed, more than its maxFailures of 0") {
		t.Errorf("reason %q", s.r.Reason)
	}

	// A report of the old version from before the rollback commit does not count.
	s.obs["dev-1"] = Observation{AtCommit: false, Report: &apiv1.RolloutReport{Version: "1.0", Phase: apiv1.PhaseSynced, Health: apiv1.HealthCurrent}}
	s.advance()
	s.want(apiv1.RolloutRollingBack, 1, map[string]apiv1.ClusterPhase{"dev-1": apiv1.ClusterRollingBack})

	s.healthy("1.0", "dev-1", "eu-1", "eu-2")
	s.wait(time.Second)
	s.advance()
	s.want(apiv1.RolloutRolledBack, 1, map[string]apiv1.ClusterPhase{
		"dev-1": apiv1.ClusterRolledBack, "eu-1": apiv1.ClusterRolledBack, "eu-2": apiv1.ClusterRolledBack, "dev-2": apiv1.ClusterConflict,
	})
	if s.r.State.Active() || s.r.FinishedAt.IsZero() {
		t.Errorf("run still active: %+v", s.r)
	}
	var rolled bool
	for _, e := range s.events {
		if e.Type != apiv1.EventRollout || e.App != "web" {
			t.Errorf("event %+v", e)
		}
		rolled = rolled || strings.Contains(e.Message, "rolled back")
	}
	if !rolled {
		t.Errorf("no rolled-back event in %+v", s.events)
	}
}

func TestProgressDeadlineAndOnFailurePause(t *testing.T) {
	p := threeWaves()
	p.OnFailure = repo.OnFailurePause
	p.Waves[0].MaxFailures = repo.FailureBudget{Count: 1}
	s := newSim(t, p)
	s.advance()
	s.healthy("2.0", "dev-1")
	s.wait(9 * time.Minute)
	s.advance()
	s.want(apiv1.RolloutRunning, 0, map[string]apiv1.ClusterPhase{"dev-2": apiv1.ClusterProgressing})
	s.wait(2 * time.Minute) // dev-2 never reported: past the deadline
	s.advance()
	s.want(apiv1.RolloutRunning, 1, map[string]apiv1.ClusterPhase{"dev-1": apiv1.ClusterVerified, "dev-2": apiv1.ClusterFailed, "eu-1": apiv1.ClusterProgressing})
	if c := s.r.Clusters[1]; !strings.Contains(c.Message, "within the progress deadline of 10m0s (last: no report)") {
		t.Errorf("dev-2 message %q", c.Message)
	}
	// In wave eu one failure is too many: the run pauses, writes nothing more.
	s.report("2.0", apiv1.PhaseSynced, apiv1.HealthFailed, "eu-1")
	s.advance()
	s.want(apiv1.RolloutPaused, 1, map[string]apiv1.ClusterPhase{"eu-1": apiv1.ClusterFailed})
	commits := s.commits
	s.wait(time.Hour)
	s.advance()
	if s.commits != commits || s.r.State != apiv1.RolloutPaused {
		t.Fatalf("a paused run wrote or moved: %s", s.r.State)
	}
	// The person rolls back.
	r, _, err := Act(s.r, apiv1.ActionRollback, "jane", s.now)
	if err != nil {
		t.Fatal(err)
	}
	s.r = r
	s.advance() // the driver writes the pending rollback step
	s.want(apiv1.RolloutRollingBack, 1, map[string]apiv1.ClusterPhase{"dev-1": apiv1.ClusterRollingBack, "dev-2": apiv1.ClusterRollingBack, "eu-1": apiv1.ClusterRollingBack})
}

func TestMaxParallelWritesBatches(t *testing.T) {
	p := &repo.RolloutPolicy{Waves: []repo.WavePolicy{{Name: "all", Selector: "env in (dev,prod)", MaxParallel: 2}}, ProgressDeadline: time.Hour}
	s := newSim(t, p)
	var batches [][]string
	for range 3 {
		s.advance()
		batches = append(batches, s.r.Steps[len(s.r.Steps)-1].Clusters)
		s.healthy("2.0", batches[len(batches)-1]...)
		s.wait(time.Second)
		s.advance()
	}
	s.advance()
	want := [][]string{{"dev-1", "dev-2"}, {"eu-1", "eu-2"}, {"us-1", "us-2"}}
	if !slices.EqualFunc(batches, want, slices.Equal) || s.r.State != apiv1.RolloutSucceeded {
		t.Errorf("batches %v (state %s), want %v", batches, s.r.State, want)
	}
}

func TestApprovalAndWindowHoldAWave(t *testing.T) {
	p := threeWaves()
	p.Waves[1].Approval = repo.ApprovalManual
	p.Window = &repo.Window{Days: []time.Weekday{time.Monday}, Start: 9 * 60, End: 17 * 60, TimeZone: "UTC"}
	s := newSim(t, p)
	s.advance()
	s.healthy("2.0", "dev-1", "dev-2")
	s.wait(time.Second)
	s.advance()
	s.wait(time.Minute)
	s.advance()
	s.want(apiv1.RolloutAwaitingApproval, 1, map[string]apiv1.ClusterPhase{"eu-1": apiv1.ClusterPending})
	if _, _, err := Act(s.r, apiv1.ActionResume, "jane", s.now); err == nil {
		t.Error("resume of a run awaiting approval was accepted")
	}
	r, _, err := Act(s.r, apiv1.ActionApprove, "jane", s.now)
	if err != nil {
		t.Fatal(err)
	}
	s.r = r
	// Approved, but after the window closed (Monday 17:00): held until next Monday 09:00.
	s.now = time.Date(2026, 12, 7, 17, 30, 0, 0, time.UTC)
	s.advance()
	s.want(apiv1.RolloutRunning, 1, map[string]apiv1.ClusterPhase{"eu-1": apiv1.ClusterPending})
	if !strings.Contains(s.r.Reason, "waits for the window Mon 09:00-17:00 UTC (opens 2026-12-14T09:00:00Z)") {
		t.Errorf("reason %q", s.r.Reason)
	}
	s.now = time.Date(2026, 12, 14, 9, 0, 0, 0, time.UTC)
	s.advance()
	s.want(apiv1.RolloutRunning, 1, map[string]apiv1.ClusterPhase{"eu-1": apiv1.ClusterProgressing})
	if s.r.Waves[1].ApprovedBy != "jane" || s.r.Reason != "" {
		t.Errorf("wave %+v, reason %q", s.r.Waves[1], s.r.Reason)
	}
}

func TestActRefusesWhatTheStateDoesNotAllow(t *testing.T) {
	base := newSim(t, threeWaves()).r
	in := func(st apiv1.RolloutState) *apiv1.Rollout {
		r := *base
		r.State = st
		return &r
	}
	pending := *base
	pending.Steps = []apiv1.RolloutStep{{Kind: apiv1.StepForward, Clusters: []string{"dev-1"}}}
	cases := map[string]struct {
		r      *apiv1.Rollout
		action apiv1.RolloutAction
		want   string // "" when allowed, else the state reached
		state  apiv1.RolloutState
	}{
		"pause running":         {in(apiv1.RolloutRunning), apiv1.ActionPause, "", apiv1.RolloutPaused},
		"pause paused":          {in(apiv1.RolloutPaused), apiv1.ActionPause, "only a running run", ""},
		"resume running":        {in(apiv1.RolloutRunning), apiv1.ActionResume, "only a paused run", ""},
		"resume paused":         {in(apiv1.RolloutPaused), apiv1.ActionResume, "", apiv1.RolloutRunning},
		"approve running":       {in(apiv1.RolloutRunning), apiv1.ActionApprove, "no wave waits", ""},
		"abort running":         {in(apiv1.RolloutRunning), apiv1.ActionAbort, "", apiv1.RolloutAborted},
		"abort succeeded":       {in(apiv1.RolloutSucceeded), apiv1.ActionAbort, "the run is over", ""},
		"rollback rolled back":  {in(apiv1.RolloutRolledBack), apiv1.ActionRollback, "already rolled back", ""},
		"rollback untouched":    {in(apiv1.RolloutRunning), apiv1.ActionRollback, "", apiv1.RolloutRolledBack},
		"abort while writing":   {&pending, apiv1.ActionAbort, "being written", ""},
		"unknown action":        {in(apiv1.RolloutRunning), "explode", "unknown action", ""},
		"rollback while paused": {in(apiv1.RolloutPaused), apiv1.ActionRollback, "", apiv1.RolloutRolledBack},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, _, err := Act(tc.r, tc.action, "jane", t0)
			if tc.want != "" {
				var ae *ActionError
				if !errors.As(err, &ae) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want an ActionError containing %q", err, tc.want)
				}
				return
			}
			if err != nil || got.State != tc.state || got.Generation != tc.r.Generation+1 {
				t.Fatalf("got %+v, %v; want state %s", got, err, tc.state)
			}
		})
	}
}

func TestOverrideAndHolds(t *testing.T) {
	s := newSim(t, threeWaves())
	s.advance()
	if !Holds(s.r, "dev-1") || !Holds(s.r, "us-2") || Holds(s.r, "lab") {
		t.Fatal("Holds does not match the run's clusters")
	}
	r, evs, err := Override(s.r, "us-2", "jane", s.now)
	if err != nil || r.State != apiv1.RolloutPaused || len(evs) != 1 {
		t.Fatalf("Override = %+v, %v, %v", r, evs, err)
	}
	if Holds(r, "us-2") || !Holds(r, "dev-1") {
		t.Error("an overridden cluster is still held, or the others are not")
	}
	if _, _, err := Override(s.r, "lab", "jane", s.now); err == nil {
		t.Error("Override of a cluster outside the run was accepted")
	}
	done := *r
	done.State = apiv1.RolloutSucceeded
	if Holds(&done, "dev-1") {
		t.Error("a finished run holds a cluster")
	}
}

func TestWindowRoundTrip(t *testing.T) {
	for _, w := range []*repo.Window{
		nil,
		{Start: 8 * 60, End: 16*60 + 30, TimeZone: "Europe/Paris"},
		{Days: []time.Weekday{time.Monday, time.Friday}, Start: 0, End: 24 * 60, TimeZone: "UTC"},
	} {
		got := parseWindow(windowString(w))
		if (w == nil) != (got == nil) || (w != nil && (got.Start != w.Start || got.End != w.End || got.TimeZone != w.TimeZone || !slices.Equal(got.Days, w.Days))) {
			t.Errorf("%+v -> %q -> %+v", w, windowString(w), got)
		}
	}
}
