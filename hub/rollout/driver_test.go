package rollout

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/hub/gitstore"
	"github.com/outpost-gitops/outpost/hub/store"
)

// testbed is a real embedded repository and a real SQLite store with four
// clusters over two waves.
type testbed struct {
	git   *gitstore.Store
	st    *store.SQLite
	dbDir string
	clock *clock
	seq   int64
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

const policy = `waves:
  - name: dev
    selector: env=dev
    soak: 1m
  - name: prod
    selector: env=prod
progressDeadline: 5m
`

func newTestbed(t *testing.T) *testbed {
	t.Helper()
	ctx := context.Background()
	seed := t.TempDir()
	files := map[string]string{
		"apps/web/app.yaml":       "namespace: web\n",
		"apps/web/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n",
		"rollouts/web.yaml":       policy,
	}
	for c, env := range map[string]string{"dev-1": "dev", "dev-2": "dev", "prod-1": "prod", "prod-2": "prod"} {
		files["clusters/"+c+"/cluster.yaml"] = "labels:\n  env: " + env + "\n"
		files["clusters/"+c+"/apps.yaml"] = "apps:\n  - name: web\n    version: \"1.0\"\n"
	}
	for p, content := range files {
		full := filepath.Join(seed, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	gs, err := gitstore.Open(ctx, gitstore.Config{Dir: filepath.Join(t.TempDir(), "repo.git"), Seed: seed}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tb := &testbed{git: gs, dbDir: t.TempDir(), clock: &clock{now: time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)}}
	tb.st = tb.openStore(t)
	for _, c := range []string{"dev-1", "dev-2", "prod-1", "prod-2"} {
		if _, err := tb.st.RegisterCluster(ctx, store.NewCluster{Name: c, TokenHash: store.HashToken("t-" + c), CreatedAt: tb.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	return tb
}

func (tb *testbed) openStore(t *testing.T) *store.SQLite {
	t.Helper()
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(tb.dbDir, "hub.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func (tb *testbed) driver(t *testing.T, st Store, git Git, holder string) *Driver {
	t.Helper()
	d, err := New(Config{Store: st, Git: git, Holder: holder, Now: tb.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// report stores a report of web from cluster at the head.
func (tb *testbed) report(t *testing.T, cluster, version string, phase apiv1.Phase, health apiv1.HealthStatus) {
	t.Helper()
	tb.seq++
	_, err := tb.st.ApplyReport(context.Background(), &apiv1.StatusReport{Cluster: cluster, SentAt: tb.clock.Now(), Apps: []apiv1.AppStatus{{
		App: "web", Generation: apiv1.Generation{Epoch: 1, Sequence: tb.seq}, Version: version, Revision: tb.git.Head(),
		Phase: phase, Health: apiv1.Health{Status: health},
	}}}, tb.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
}

func (tb *testbed) versions(t *testing.T) map[string]string {
	t.Helper()
	sn, err := tb.git.Snapshot(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, c := range sn.Clusters {
		out[c.Name] = versionIn(sn, c.Name, "web")
	}
	return out
}

// commitsOf counts the commits carrying the run's trailer.
func (tb *testbed) commitsOf(t *testing.T, id string) int {
	t.Helper()
	entries, err := tb.git.History(context.Background(), "dev-1", "", 100)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range []string{"dev-1", "dev-2", "prod-1", "prod-2"} {
		es, err := tb.git.History(context.Background(), c, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, es...)
	}
	n := 0
	for _, e := range entries {
		if !seen[e.Revision] && strings.Contains(e.Message, "Outpost-Rollout: "+id) {
			n++
		}
		seen[e.Revision] = true
	}
	return n
}

func TestDriverRunsAPolicyFromGitToTheEnd(t *testing.T) {
	ctx := context.Background()
	tb := newTestbed(t)
	d := tb.driver(t, tb.st, tb.git, "hub-a")
	r, err := d.Start(ctx, "web", "2.0", "jane")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Start(ctx, "web", "3.0", "joe"); !errors.As(err, new(*store.ActiveRolloutError)) {
		t.Fatalf("second start: %v, want an ActiveRolloutError", err)
	}
	d.driveAll(ctx)
	if v := tb.versions(t); v["dev-1"] != "2.0" || v["dev-2"] != "2.0" || v["prod-1"] != "1.0" {
		t.Fatalf("after wave dev's commit: %v", v)
	}
	msg := headMessage(t, tb)
	for _, want := range []string{"rollout " + r.ID + ": set web=2.0 on wave dev (2 clusters)", "Outpost-Rollout: " + r.ID, "Outpost-Step: 0", "Outpost-Wave: dev"} {
		if !strings.Contains(msg, want) {
			t.Errorf("commit message %q lacks %q", msg, want)
		}
	}
	if held, _ := d.Holding(ctx, "web", "prod-2"); held == nil || held.ID != r.ID {
		t.Errorf("Holding(prod-2) = %v", held)
	}

	tb.report(t, "dev-1", "2.0", apiv1.PhaseSynced, apiv1.HealthCurrent)
	tb.report(t, "dev-2", "2.0", apiv1.PhaseSynced, apiv1.HealthCurrent)
	d.driveAll(ctx)
	tb.clock.add(time.Minute)
	d.driveAll(ctx)
	if v := tb.versions(t); v["prod-1"] != "2.0" || v["prod-2"] != "2.0" {
		t.Fatalf("after wave prod's commit: %v", v)
	}
	tb.report(t, "prod-1", "2.0", apiv1.PhaseSynced, apiv1.HealthCurrent)
	tb.report(t, "prod-2", "2.0", apiv1.PhaseSynced, apiv1.HealthCurrent)
	d.driveAll(ctx)
	got, err := d.Get(ctx, r.ID)
	if err != nil || got.State != apiv1.RolloutSucceeded {
		t.Fatalf("run = %+v, %v", got, err)
	}
	if n := tb.commitsOf(t, r.ID); n != 2 {
		t.Errorf("%d commits of the run, want 2", n)
	}
	evs, err := tb.st.Events(ctx, store.EventQuery{App: "web", Type: apiv1.EventRollout})
	if err != nil || len(evs) < 5 {
		t.Errorf("events: %d, %v", len(evs), err)
	}
}

// crashingGit commits, then answers an error: a hub killed after the commit and
// before it recorded it.
type crashingGit struct {
	*gitstore.Store
	crashed bool
}

func (g *crashingGit) SetEach(ctx context.Context, req gitstore.EachRequest, a gitstore.Author) (*gitstore.EachResult, error) {
	if _, err := g.Store.SetEach(ctx, req, a); err != nil {
		return nil, err
	}
	g.crashed = true
	return nil, errors.New("killed after the commit")
}

// A hub killed between a wave's commit and its bookkeeping: the next process finds
// the commit by its trailers and neither writes it twice nor skips it; a rollback
// after a failure sets both waves back in one commit.
func TestDriverResumesAfterACrashAndRollsBack(t *testing.T) {
	ctx := context.Background()
	tb := newTestbed(t)
	first := tb.driver(t, tb.st, &crashingGit{Store: tb.git}, "hub-a")
	r, err := first.Start(ctx, "web", "2.0", "jane")
	if err != nil {
		t.Fatal(err)
	}
	first.driveAll(ctx)
	stored, _ := tb.st.GetRollout(ctx, r.ID)
	if PendingStep(stored) != 0 || tb.versions(t)["dev-1"] != "2.0" {
		t.Fatalf("the crash left: pending step %d, versions %v", PendingStep(stored), tb.versions(t))
	}
	if err := tb.st.ReleaseLease(ctx, LeaseName, "hub-a"); err != nil {
		t.Fatal(err)
	}

	// The next hub process, on a reopened store.
	st2 := tb.openStore(t)
	second := tb.driver(t, st2, tb.git, "hub-b")
	second.driveAll(ctx)
	if n := tb.commitsOf(t, r.ID); n != 1 {
		t.Fatalf("%d commits of wave dev after the restart, want 1", n)
	}
	got, _ := second.Get(ctx, r.ID)
	if PendingStep(got) >= 0 || got.Steps[0].Commit == "" || (*run)(got).cluster("dev-1").Phase != apiv1.ClusterProgressing ||
		(*run)(got).cluster("dev-1").Previous != "1.0" {
		t.Fatalf("recovered run = %+v", got)
	}

	// dev-2 fails: the run rolls back dev-1 and dev-2 in one commit.
	tb.report(t, "dev-1", "2.0", apiv1.PhaseSynced, apiv1.HealthCurrent)
	tb.report(t, "dev-2", "2.0", apiv1.PhaseFailed, apiv1.HealthUnknown)
	second.driveAll(ctx)
	if v := tb.versions(t); v["dev-1"] != "1.0" || v["dev-2"] != "1.0" || v["prod-1"] != "1.0" {
		t.Fatalf("after the rollback: %v", v)
	}
	if n := tb.commitsOf(t, r.ID); n != 2 {
		t.Fatalf("%d commits of the run, want 2 (wave dev and the rollback)", n)
	}
	tb.report(t, "dev-1", "1.0", apiv1.PhaseSynced, apiv1.HealthCurrent)
	tb.report(t, "dev-2", "1.0", apiv1.PhaseSynced, apiv1.HealthCurrent)
	second.driveAll(ctx)
	got, _ = second.Get(ctx, r.ID)
	if got.State != apiv1.RolloutRolledBack {
		t.Fatalf("run %s (%s), want RolledBack", got.State, got.Reason)
	}
}

// Two hub processes on one store: only the lease holder drives.
func TestOnlyTheLeaseHolderDrives(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	tb := newTestbed(t)
	a := tb.driver(t, tb.st, tb.git, "hub-a")
	st2 := tb.openStore(t)
	b := tb.driver(t, st2, tb.git, "hub-b")
	if ok, err := tb.st.AcquireLease(ctx, LeaseName, "hub-a", tb.clock.Now(), time.Hour); !ok || err != nil {
		t.Fatal(ok, err)
	}
	r, err := b.Start(ctx, "web", "2.0", "jane")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = b.Run(ctx); close(done) }()
	time.Sleep(3 * DefaultInterval / 2)
	if v := tb.versions(t); v["dev-1"] != "1.0" {
		t.Fatalf("hub-b wrote without the lease: %v", v)
	}
	a.driveAll(ctx)
	if v := tb.versions(t); v["dev-1"] != "2.0" {
		t.Fatalf("hub-a, the holder, did not write: %v", v)
	}
	cancel()
	<-done
	if n := tb.commitsOf(t, r.ID); n != 1 {
		t.Errorf("%d commits, want 1", n)
	}
}

func headMessage(t *testing.T, tb *testbed) string {
	t.Helper()
	es, err := tb.git.History(context.Background(), "dev-1", "web", 1)
	if err != nil || len(es) == 0 {
		t.Fatal(err)
	}
	return es[0].Message
}
