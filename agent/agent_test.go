package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"go.opentelemetry.io/otel"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/gittest"
	"github.com/outpost-gitops/outpost/internal/hubtest"
	"github.com/outpost-gitops/outpost/internal/testenv"
)

var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "agent"}, func(c *testenv.Cluster) { env = c })
}

// gitRepo is the GitOps repository of a test, with a work tree to commit from.
type gitRepo struct {
	t    *testing.T
	dir  string
	repo *git.Repository
	ns   string // expanded for $NS in file contents
}

func newGitRepo(t *testing.T, ns string) *gitRepo {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	return &gitRepo{t: t, dir: dir, repo: r, ns: ns}
}

func (g *gitRepo) url() string { return "file://" + g.dir }

// commit writes files ("" deletes one) and commits; it returns the commit hash.
func (g *gitRepo) commit(files map[string]string, msg string) string {
	g.t.Helper()
	wt, err := g.repo.Worktree()
	if err != nil {
		g.t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(g.dir, name)
		if content == "" {
			if _, err := wt.Remove(name); err != nil {
				g.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			g.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "$NS", g.ns)), 0o644); err != nil {
			g.t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			g.t.Fatal(err)
		}
	}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: &object.Signature{Name: "Ada", Email: "ada@example.com", When: time.Now()}})
	if err != nil {
		g.t.Fatal(err)
	}
	return h.String()
}

// runningAgent is an agent started by a test.
type runningAgent struct {
	cancel   context.CancelFunc
	done     chan struct{} // closed when Run returned; err is then set
	err      error
	requests *testenv.Requests
	dead     atomic.Bool // set: every request fails, as if the process had died
}

func (a *runningAgent) stop(t *testing.T) {
	t.Helper()
	a.cancel()
	select {
	case <-a.done:
		if a.err != nil {
			t.Errorf("agent exited with %v", a.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop within 30s")
	}
}

// startAgent runs an agent in-process against the test cluster. mutate adjusts the
// configuration.
func startAgent(t *testing.T, repoURL, invNS string, mutate func(*Config)) *runningAgent {
	t.Helper()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("agent-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Leader-election renewals are not sync work.
	counter := &testenv.Requests{Ignore: func(r *http.Request) bool { return strings.Contains(r.URL.Path, "/leases/") }}
	rc := env.RESTConfig()
	rc.Wrap(counter.Wrap)
	a := &runningAgent{requests: counter}
	rc.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			if a.dead.Load() {
				return nil, errors.New("the agent process is dead")
			}
			return rt.RoundTrip(r)
		})
	})
	cfg := DefaultConfig()
	cfg.ClusterName = "dev"
	cfg.GitURL = repoURL
	cfg.TokenFile = token
	cfg.CacheDir = t.TempDir()
	cfg.ListenAddr = ""
	cfg.LeaderElect = false
	cfg.Interval = time.Hour
	cfg.GitPollInterval = time.Hour
	cfg.InventoryNamespace = invNS
	cfg.RESTConfig = rc
	if mutate != nil {
		mutate(&cfg)
	}
	ctx, cancel := context.WithCancel(t.Context())
	a.cancel, a.done = cancel, make(chan struct{})
	go func() {
		a.err = Run(ctx, cfg, testLogger(t))
		close(a.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(30 * time.Second):
		}
	})
	return a
}

func testLogger(t *testing.T) *slogLogger { return newTestLogger(t) }

func configMap(t *testing.T, ns, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := kubernetes.NewForConfigOrDie(env.RESTConfig()).CoreV1().ConfigMaps(ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func waitConfigMap(t *testing.T, ns, name string, timeout time.Duration, cond func(*corev1.ConfigMap) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		cm := configMap(t, ns, name)
		if cond(cm) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ConfigMap %s/%s: condition not met within %s (now %+v)", ns, name, timeout, cm)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// webApp is an app with a ConfigMap carrying its version, and a Deployment.
func webApp(name string) map[string]string {
	return map[string]string{
		"apps/" + name + "/app.yaml": "namespace: $NS\n",
		"apps/" + name + "/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: ` + name + `
data:
  version: "${APP_VERSION}"
`,
	}
}

func appsYAML(apps map[string]string) string {
	var b strings.Builder
	b.WriteString("apps:\n")
	for _, name := range sortedKeys(apps) {
		fmt.Fprintf(&b, "  - name: %s\n    version: %q\n", name, apps[name])
	}
	return b.String()
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// TestCommitsAppliedAndReportedWithLongPollAndByIntervalWithout: with a hub, each
// commit the hub announces is applied and reported; without one, the Git poll alone
// applies a commit. The latencies are measured by the commit-to-reported benchmark
// (bench/internal/benchrun/latency.go), not here.
func TestCommitsAppliedAndReportedWithLongPollAndByIntervalWithout(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1.0.0"})}), "web 1.0.0")
	hub := hubtest.New(t, "agent-token")
	a := startAgent(t, repo.url(), ns, func(c *Config) { c.HubURL = hub.URL })
	hub.Wait(t, "web", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool {
		return s.Phase == apiv1.PhaseSynced && s.Version == "1.0.0"
	})

	for i := 1; i <= 5; i++ {
		version := fmt.Sprintf("1.0.%d", i)
		rev := repo.commit(map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": version})}, "web "+version)
		hub.Publish(rev)
		waitConfigMap(t, ns, "web", 10*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == version })
		hub.Wait(t, "web", 10*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Version == version && s.Revision == rev })
	}
	a.stop(t)

	// Without a hub: the Git poll interval alone converges.
	b := startAgent(t, repo.url(), ns, func(c *Config) { c.GitPollInterval = 300 * time.Millisecond })
	repo.commit(map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "2.0.0"})}, "web 2.0.0")
	waitConfigMap(t, ns, "web", 20*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == "2.0.0" })
	b.stop(t)
}

func TestGitDownKeepsStateThenConverges(t *testing.T) {
	ns := env.CreateNamespace(t)
	git := gittest.New(t, gittest.WithToken("git-secret"))
	expand := func(files map[string]string) map[string]string {
		for k, v := range files {
			files[k] = strings.ReplaceAll(v, "$NS", ns)
		}
		return files
	}
	git.Commit(t, expand(merge(webApp("web"), webApp("api"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1", "api": "1"})})), "two apps", "")
	password := filepath.Join(t.TempDir(), "git-password")
	if err := os.WriteFile(password, []byte("git-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hub := hubtest.New(t, "agent-token")
	startAgent(t, git.URL(), ns, func(c *Config) {
		c.HubURL = hub.URL
		c.GitPasswordFile = password
		c.GitPollInterval = 200 * time.Millisecond
	})
	hub.Wait(t, "api", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced })

	git.Stop() // the Git server goes away: connections refused
	st := hub.Wait(t, "web", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSourceUnavailable })
	if st.Error == nil || st.Error.Stage != apiv1.StageFetch || strings.Contains(st.Error.Message, "git-secret") {
		t.Errorf("error = %+v, want a fetch error without the password", st.Error)
	}
	t.Logf("reported while Git is down: %s", st.Error.Message)
	time.Sleep(500 * time.Millisecond) // more failed polls
	for _, name := range []string{"web", "api"} {
		if configMap(t, ns, name) == nil {
			t.Fatalf("%s pruned while Git was down", name)
		}
	}
	git.Start()
	git.Commit(t, map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "2", "api": "1"})}, "web 2", "")
	hub.Wait(t, "web", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced && s.Version == "2" })
	waitConfigMap(t, ns, "web", 5*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == "2" })
}

func TestHubDownWhileCommitsLandLosesNothing(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	apps := map[string]string{"web": "1", "api": "1", "cache": "1"}
	repo.commit(merge(webApp("web"), webApp("api"), webApp("cache"), map[string]string{"clusters/dev/apps.yaml": appsYAML(apps)}), "three apps")
	hub := hubtest.New(t, "agent-token")
	startAgent(t, repo.url(), ns, func(c *Config) { c.HubURL = hub.URL; c.GitPollInterval = 200 * time.Millisecond })
	hub.Wait(t, "cache", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced })

	hub.Stop()
	for i := 2; i <= 4; i++ {
		apps["web"], apps["api"] = fmt.Sprint(i), fmt.Sprint(i*10)
		repo.commit(map[string]string{"clusters/dev/apps.yaml": appsYAML(apps)}, fmt.Sprint("bump ", i))
		want := apps["web"]
		waitConfigMap(t, ns, "web", 20*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == want })
	}
	hub.Start()
	for app, version := range apps {
		hub.Wait(t, app, 60*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool {
			return s.Phase == apiv1.PhaseSynced && s.Version == version
		})
	}
}

func TestTwoAgentsOnlyTheLeaderWrites(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1"})}), "web")
	elect := func(id string) func(*Config) {
		return func(c *Config) {
			c.LeaderElect, c.LeaseNamespace, c.Identity = true, ns, id
			c.LeaseDuration = 2 * time.Second
			c.GitPollInterval = 200 * time.Millisecond
		}
	}
	a := startAgent(t, repo.url(), ns, elect("agent-a"))
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil })
	b := startAgent(t, repo.url(), ns, elect("agent-b"))
	repo.commit(map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "2"})}, "web 2")
	waitConfigMap(t, ns, "web", 20*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == "2" })
	time.Sleep(time.Second)
	aw, _, _ := a.requests.Counts()
	bw, _, _ := b.requests.Counts()
	if aw == 0 || bw != 0 {
		t.Fatalf("writes: leader %d, standby %d %v; want only the leader to write", aw, bw, b.requests.Writes())
	}
	t.Logf("writes: leader %d, standby %d", aw, bw)

	// The leader goes away: the standby takes over and converges.
	start := time.Now()
	a.stop(t)
	repo.commit(map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "3"})}, "web 3")
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == "3" })
	t.Logf("standby took over and applied the next commit %s after the leader stopped", time.Since(start).Round(time.Millisecond))
	if bw, _, _ := b.requests.Counts(); bw == 0 {
		t.Error("the new leader made no write")
	}

	// Now the leader dies without releasing the Lease: a third replica takes over once
	// the lease expires, and converges.
	c := startAgent(t, repo.url(), ns, elect("agent-c"))
	time.Sleep(time.Second)
	if cw, _, _ := c.requests.Counts(); cw != 0 {
		t.Fatalf("standby agent-c wrote %v while agent-b leads", c.requests.Writes())
	}
	start = time.Now()
	b.dead.Store(true)
	repo.commit(map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "4"})}, "web 4")
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == "4" })
	t.Logf("after the leader died (no release, lease 2 s), the standby applied the next commit in %s", time.Since(start).Round(time.Millisecond))
}

func TestDriftReportedAndCorrected(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	deploy := func(name string) string {
		return `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
spec:
  replicas: 2
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      containers: [{name: web, image: "nginx:${APP_VERSION}"}]
`
	}
	repo.commit(map[string]string{
		"apps/web/app.yaml":      "namespace: $NS\ndrift: report\n",
		"apps/web/deploy.yaml":   deploy("web"),
		"apps/fixed/app.yaml":    "namespace: $NS\ndrift: correct\n",
		"apps/fixed/deploy.yaml": deploy("fixed"),
		"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1.27", "fixed": "1.27"}),
	}, "two deployments")
	hub := hubtest.New(t, "agent-token")
	startAgent(t, repo.url(), ns, func(c *Config) { c.HubURL = hub.URL })
	for _, app := range []string{"web", "fixed"} {
		hub.Wait(t, app, 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced })
	}
	cs := kubernetes.NewForConfigOrDie(env.RESTConfig())
	scale := func(name string, n int32) {
		if _, err := cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), name, &autoscalingv1.Scale{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: n},
		}, metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
			t.Fatal(err)
		}
	}
	// drift: report — visible at the hub with path and manager.
	start := time.Now()
	scale("web", 5)
	hub.Wait(t, "web", 5*time.Second, func(_ apiv1.AppStatus, d []apiv1.Drift) bool {
		return len(d) == 1 && len(d[0].Fields) == 1 && d[0].Fields[0].Path == "spec.replicas" && d[0].Fields[0].Manager == "kubectl"
	})
	t.Logf("kubectl scale → drift at the hub: %s", time.Since(start).Round(time.Millisecond))
	time.Sleep(300 * time.Millisecond)
	if d, _ := cs.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{}); *d.Spec.Replicas != 5 {
		t.Errorf("drift: report changed the object back (replicas %d)", *d.Spec.Replicas)
	}

	// drift: correct — restored, and the drift cleared at the hub.
	start = time.Now()
	scale("fixed", 7)
	deadline := time.Now().Add(10 * time.Second)
	for {
		d, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "fixed", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *d.Spec.Replicas == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas still %d under drift: correct", *d.Spec.Replicas)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("kubectl scale → corrected: %s", time.Since(start).Round(time.Millisecond))
	hub.Wait(t, "fixed", 5*time.Second, func(_ apiv1.AppStatus, d []apiv1.Drift) bool { return len(d) == 0 })

	// A deleted object is drift; under correct it is recreated.
	if err := cs.AppsV1().Deployments(ns).Delete(t.Context(), "fixed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, err := cs.AppsV1().Deployments(ns).Get(t.Context(), "fixed", metav1.GetOptions{}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("deleted Deployment not recreated under drift: correct")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBrokenAppFailsWithItsFileOthersSync(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{
		"apps/broken/app.yaml":   "namespace: $NS\n",
		"apps/broken/bad.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken\ndata:\n  x: y\n",
		"apps/novar/app.yaml":    "namespace: $NS\n",
		"apps/novar/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: novar\ndata:\n  x: \"${UNDEFINED_VAR}\"\n",
		"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1", "broken": "1", "novar": "1"}),
	}), "two broken apps")
	hub := hubtest.New(t, "agent-token")
	startAgent(t, repo.url(), ns, func(c *Config) { c.HubURL = hub.URL })
	hub.Wait(t, "web", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced })
	broken := hub.Wait(t, "broken", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseFailed })
	if broken.Error == nil || broken.Error.Stage != apiv1.StageRender || !strings.Contains(broken.Error.Message, "apps/broken/bad.yaml") {
		t.Fatalf("broken app error = %+v, want a render error naming apps/broken/bad.yaml", broken.Error)
	}
	st := hub.Wait(t, "novar", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseFailed })
	if st.Error == nil || !strings.Contains(st.Error.Message, "UNDEFINED_VAR") || !strings.Contains(st.Error.Message, "ConfigMap/novar") {
		t.Errorf("novar error = %+v, want a render error naming the object and the variable", st.Error)
	}
	t.Logf("reported errors:\n  broken: %s\n  novar:  %s", broken.Error.Message, st.Error.Message)
}

// An app removed from apps.yaml and added back starts afresh: a failed first sync after
// its return reports no LastSyncedAt of its previous life, and its reports still rank
// above the ones sent before the removal.
func TestRemovedAppReturnsWithoutItsOldLastSyncedAt(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), webApp("api"), map[string]string{
		"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1", "api": "1"}),
	}), "two apps")
	hub := hubtest.New(t, "agent-token")
	startAgent(t, repo.url(), ns, func(c *Config) { c.HubURL = hub.URL; c.GitPollInterval = 200 * time.Millisecond })
	first := hub.Wait(t, "web", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced })
	if first.LastSyncedAt.IsZero() {
		t.Fatalf("synced web reported no LastSyncedAt: %+v", first)
	}

	repo.commit(map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"api": "1"})}, "remove web")
	hub.Wait(t, "web", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseRemoved })

	repo.commit(map[string]string{
		"apps/web/config.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web\n",
		"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "2", "api": "1"}),
	}, "web back, broken")
	// The hub keeps only a greater Generation: seeing the failure proves the ranking.
	back := hub.Wait(t, "web", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool {
		return s.Phase == apiv1.PhaseFailed && s.Version == "2"
	})
	if !back.LastSyncedAt.IsZero() {
		t.Errorf("web back after its removal reports LastSyncedAt %s from before the removal (first sync %s)", back.LastSyncedAt, first.LastSyncedAt)
	}
}

func TestIdleAgentMakesNoWritesAndNoDryRuns(t *testing.T) {
	if testing.Short() {
		t.Skip("60 s idle window")
	}
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	files := map[string]string{}
	versions := map[string]string{}
	for i := range 20 {
		name := fmt.Sprintf("app%02d", i)
		versions[name] = "1"
		files = merge(files, webApp(name), map[string]string{"apps/" + name + "/svc.yaml": `apiVersion: v1
kind: Service
metadata:
  name: ` + name + `
spec:
  ports: [{port: 80}]
`})
	}
	files["clusters/dev/apps.yaml"] = appsYAML(versions)
	repo.commit(files, "20 apps")
	hub := hubtest.New(t, "agent-token")
	a := startAgent(t, repo.url(), ns, func(c *Config) {
		c.HubURL = hub.URL
		c.Interval = 10 * time.Second // full resyncs during the window
		c.GitPollInterval = 2 * time.Second
	})
	for name := range versions {
		hub.Wait(t, name, 60*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced })
	}
	time.Sleep(2 * time.Second) // let the first full resync record fresh resourceVersions
	a.requests.Reset()
	time.Sleep(60 * time.Second)
	w, d, r := a.requests.Counts()
	t.Logf("idle 60 s with 20 apps (40 objects), full resync every ~10 s: %d writes, %d dry-runs, %d reads; test process RSS %s", w, d, r, rss())
	if w != 0 || d != 0 {
		t.Errorf("idle agent made %d writes %v and %d dry-runs %v, want 0 and 0", w, a.requests.Writes(), d, a.requests.DryRuns())
	}
}

func rss() string {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmRSS:"))
		}
	}
	return "unknown"
}

func TestServesMetricsAndHealth(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1"})}), "web")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	startAgent(t, repo.url(), ns, func(c *Config) { c.ListenAddr = addr })
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil })
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := get("/readyz")
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d after the first sync", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code, body := get("/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{
		"outpost_agent_sync_duration_seconds_bucket", "outpost_agent_objects_applied_total",
		"outpost_agent_last_success_timestamp_seconds", "outpost_agent_drifted_objects", "process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestCRDAndItsResourceInOneApp: the agent's client must learn a kind created in the
// same sync (a stale discovery cache once made the CR wait out the apply timeout).
func TestCRDAndItsResourceInOneApp(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	group := strings.ReplaceAll(ns, "-", "") + ".example.com" // a group per test: CRDs are cluster-scoped
	repo.commit(map[string]string{
		"apps/gadgets/app.yaml": "namespace: $NS\n",
		"apps/gadgets/crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.` + group + `
spec:
  group: ` + group + `
  scope: Namespaced
  names: {kind: Gadget, plural: gadgets, singular: gadget, listKind: GadgetList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec: {type: object, properties: {size: {type: integer}}}
`,
		"apps/gadgets/gadget.yaml": "apiVersion: " + group + "/v1\nkind: Gadget\nmetadata:\n  name: one\nspec:\n  size: 3\n",
		"clusters/dev/apps.yaml":   appsYAML(map[string]string{"gadgets": "1"}),
	}, "a CRD and a resource of it")
	hub := hubtest.New(t, "agent-token")
	start := time.Now()
	startAgent(t, repo.url(), ns, func(c *Config) { c.HubURL = hub.URL })
	st := hub.Wait(t, "gadgets", 15*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool {
		return s.Phase == apiv1.PhaseSynced || s.Phase == apiv1.PhaseFailed
	})
	if st.Phase != apiv1.PhaseSynced || st.Counts.Created != 2 {
		t.Fatalf("gadgets = %s %+v (counts %+v), want the CRD and the Gadget created", st.Phase, st.Error, st.Counts)
	}
	t.Logf("CRD + custom resource synced %s after the agent started", time.Since(start).Round(time.Millisecond))
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestClusterScopedResourceOfAnotherAppsCRD: the app's default namespace must not be
// put on a cluster-scoped custom resource whose CRD another app installed; only the
// cluster's discovery knows its scope.
func TestClusterScopedResourceOfAnotherAppsCRD(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	group := strings.ReplaceAll(ns, "-", "") + ".example.com"
	repo.commit(map[string]string{
		"apps/crds/crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: issuers.` + group + `
spec:
  group: ` + group + `
  scope: Cluster
  names: {kind: Issuer, plural: issuers, singular: issuer, listKind: IssuerList}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`,
		"apps/issuers/app.yaml":    "namespace: $NS\ndependsOn: [crds]\n",
		"apps/issuers/issuer.yaml": "apiVersion: " + group + "/v1\nkind: Issuer\nmetadata:\n  name: " + ns + "-letsencrypt\nspec:\n  email: ops@example.com\n",
		"clusters/dev/apps.yaml":   appsYAML(map[string]string{"crds": "1", "issuers": "1"}),
	}, "a cluster-scoped CR of another app's CRD")
	hub := hubtest.New(t, "agent-token")
	startAgent(t, repo.url(), ns, func(c *Config) { c.HubURL = hub.URL })
	st := hub.Wait(t, "issuers", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool {
		return s.Phase == apiv1.PhaseSynced || s.Phase == apiv1.PhaseFailed
	})
	if st.Phase != apiv1.PhaseSynced {
		t.Fatalf("issuers = %s %+v, want the cluster-scoped Issuer applied without a namespace", st.Phase, st.Error)
	}
	// Its drift is watched like any other object's: that needs the desired object
	// without the namespace, as the cluster has it.
	dyn := dynamic.NewForConfigOrDie(env.RESTConfig())
	gvr := schema.GroupVersionResource{Group: group, Version: "v1", Resource: "issuers"}
	if _, err := dyn.Resource(gvr).Patch(t.Context(), ns+"-letsencrypt", types.MergePatchType, []byte(`{"spec":{"email":"someone@else.com"}}`),
		metav1.PatchOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	hub.Wait(t, "issuers", 10*time.Second, func(_ apiv1.AppStatus, d []apiv1.Drift) bool {
		return len(d) == 1 && len(d[0].Fields) == 1 && d[0].Fields[0].Path == "spec.email" && d[0].Fields[0].Manager == "kubectl-edit"
	})
}

// TestTwoAgentsInOneProcessShareNoGlobalAndDiscoverOnce: the demo and the bench run
// several agents in one process, so Run sets no process global (OTel's tracer provider
// and propagator, klog's logger), even with an OTLP endpoint set; and each agent has
// one RESTMapper for its apply, health, drift watch and inventory, so it reads the
// cluster's discovery roots (/api, /apis) once, not once per component.
func TestTwoAgentsInOneProcessShareNoGlobalAndDiscoverOnce(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1") // export fails in the background
	tp0, prop0 := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	klog0 := fmt.Sprintf("%T", klog.Background().GetSink())
	type agentRun struct {
		ns        string
		hub       *hubtest.Stub
		discovery atomic.Int32
	}
	runs := []*agentRun{{}, {}}
	for _, r := range runs {
		r.ns = env.CreateNamespace(t)
		repo := newGitRepo(t, r.ns)
		repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "1"})}), "web 1")
		r.hub = hubtest.New(t, "agent-token")
		startAgent(t, repo.url(), r.ns, func(c *Config) {
			c.HubURL = r.hub.URL
			c.RESTConfig.Wrap(func(rt http.RoundTripper) http.RoundTripper {
				return rtFunc(func(req *http.Request) (*http.Response, error) {
					if req.URL.Path == "/api" || req.URL.Path == "/apis" {
						r.discovery.Add(1)
					}
					return rt.RoundTrip(req)
				})
			})
		})
	}
	for i, r := range runs {
		r.hub.Wait(t, "web", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced })
		if n := r.discovery.Load(); n > 2 {
			t.Errorf("agent %d read the discovery roots %d times, want once each of /api and /apis (one RESTMapper)", i, n)
		}
	}
	if otel.GetTracerProvider() != tp0 {
		t.Error("an agent replaced OTel's global tracer provider")
	}
	if otel.GetTextMapPropagator() != prop0 {
		t.Error("an agent replaced OTel's global propagator")
	}
	if got := fmt.Sprintf("%T", klog.Background().GetSink()); got != klog0 {
		t.Errorf("an agent replaced klog's logger: its sink is a %s, was a %s", got, klog0)
	}
}

// An app whose sync failed for a passing reason (here its namespace did not exist yet;
// in the fault-injection suite the apiserver was down) is retried with backoff, not
// only at the next full resync or commit: it converges within seconds once the cause
// is gone, with Git unchanged and the resync an hour away.
func TestFailedAppRetriedWithBackoff(t *testing.T) {
	ns := env.CreateNamespace(t)
	later := ns + "-later"
	repo := newGitRepo(t, ns)
	repo.commit(map[string]string{
		"apps/late/app.yaml":     "namespace: " + later + "\ncreateNamespace: false\n",
		"apps/late/cm.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: late\ndata:\n  v: \"1\"\n",
		"clusters/dev/apps.yaml": appsYAML(map[string]string{"late": "1"}),
	}, "an app in a namespace that does not exist yet")
	hub := hubtest.New(t, "agent-token")
	startAgent(t, repo.url(), ns, func(c *Config) { c.HubURL = hub.URL })
	hub.Wait(t, "late", 30*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseFailed })
	cs := kubernetes.NewForConfigOrDie(env.RESTConfig())
	if _, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: later}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), later, metav1.DeleteOptions{}) })
	waitConfigMap(t, later, "late", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil })
	hub.Wait(t, "late", 10*time.Second, func(s apiv1.AppStatus, _ []apiv1.Drift) bool { return s.Phase == apiv1.PhaseSynced })
}

// A write with Outpost's own field manager that this agent's apply did not make — a
// fenced-out leader's, sent after it resumed from a pause — is undone at once although
// the app's drift policy is report: it is no user's drift. A change by another manager
// to the same app is still only reported.
func TestStaleWriteOfOwnFieldManagerUndoneUnderDriftReport(t *testing.T) {
	ns := env.CreateNamespace(t)
	repo := newGitRepo(t, ns)
	repo.commit(merge(webApp("web"), map[string]string{"clusters/dev/apps.yaml": appsYAML(map[string]string{"web": "2"})}), "web at 2")
	startAgent(t, repo.url(), ns, nil)
	waitConfigMap(t, ns, "web", 30*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == "2" })
	time.Sleep(300 * time.Millisecond) // the sync cycle ends

	cs := kubernetes.NewForConfigOrDie(env.RESTConfig())
	live := configMap(t, ns, "web")
	// The old leader's write of version 1, with the whole object it had rendered.
	stale := corev1ac.ConfigMap("web", ns).WithLabels(live.Labels).WithAnnotations(live.Annotations).
		WithData(map[string]string{"version": "1"})
	start := time.Now()
	if _, err := cs.CoreV1().ConfigMaps(ns).Apply(t.Context(), stale, metav1.ApplyOptions{FieldManager: "outpost", Force: true}); err != nil {
		t.Fatal(err)
	}
	waitConfigMap(t, ns, "web", 10*time.Second, func(cm *corev1.ConfigMap) bool { return cm != nil && cm.Data["version"] == "2" })
	t.Logf("stale write by Outpost's field manager undone in %s", time.Since(start).Round(time.Millisecond))

	// Another manager's change under drift: report stays.
	other := corev1ac.ConfigMap("web", ns).WithData(map[string]string{"version": "edited"})
	if _, err := cs.CoreV1().ConfigMaps(ns).Apply(t.Context(), other, metav1.ApplyOptions{FieldManager: "kubectl", Force: true}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if cm := configMap(t, ns, "web"); cm == nil || cm.Data["version"] != "edited" {
		t.Errorf("drift: report changed another manager's edit back: %+v", cm)
	}
}
