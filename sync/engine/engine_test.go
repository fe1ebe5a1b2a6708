package engine

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/inventory"
)

var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "engine"}, func(c *testenv.Cluster) { env = c })
}

// fixture is an engine on the test cluster whose inventories live in their own
// namespace, so tests do not see each other's apps.
type fixture struct {
	eng  *Engine
	req  *testenv.Requests
	cs   kubernetes.Interface
	root string
	ns   string
}

func newFixture(t *testing.T) *fixture { return newTracedFixture(t, nil) }

// newTracedFixture is newFixture with the engine and the apply step recording spans
// with tracer (nil: none).
func newTracedFixture(t *testing.T, tracer trace.Tracer) *fixture {
	t.Helper()
	ns := env.CreateNamespace(t)
	req := &testenv.Requests{}
	cfg := env.RESTConfig()
	cfg.Wrap(req.Wrap)
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	invNS := ns + "-inv"
	store := inventory.NewStore(c, inventory.StoreOptions{Namespace: invNS})
	syncer, err := apply.New(apply.Config{Client: c, Store: store, Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	getter, err := health.NewDynamicGetterForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := New(Config{Syncer: syncer, Health: getter, Inventories: store, Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{eng: eng, req: req, cs: kubernetes.NewForConfigOrDie(env.RESTConfig()), root: t.TempDir(), ns: ns}
}

// write puts files into the repository, expanding $NS to the test's namespace.
func (f *fixture) write(t *testing.T, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(f.root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if content == "" {
			_ = os.Remove(p)
			continue
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(content, "$NS", f.ns)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) sync(t *testing.T) *ClusterResult {
	t.Helper()
	res, err := f.eng.SyncCluster(t.Context(), Request{Root: f.root, Revision: "r1", Cluster: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (f *fixture) configMap(t *testing.T, name string) *corev1.ConfigMap {
	t.Helper()
	cm, err := f.cs.CoreV1().ConfigMaps(f.ns).Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

func appByName(res *ClusterResult, name string) *AppResult {
	for i := range res.Apps {
		if res.Apps[i].App == name {
			return &res.Apps[i]
		}
	}
	return nil
}

var baseRepo = map[string]string{
	"clusters/dev/cluster.yaml": "labels: {env: dev}\nvars: {color: blue}\n",
	"clusters/dev/apps.yaml": `apps:
  - name: base
    version: "1"
  - name: web
    version: "1.0.0"
    vars: {greeting: hello}
  - name: broken
    version: "0.1"
`,
	"apps/base/app.yaml":   "namespace: $NS\n",
	"apps/base/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: base}\ndata:\n  env: \"${CLUSTER_LABEL_env}\"\n",
	"apps/web/app.yaml":    "namespace: $NS\ndependsOn: [base]\n",
	"apps/web/cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata:\n  version: \"${APP_VERSION}\"\n  greeting: \"${greeting}\"\n  color: \"${color}\"\n",
	"apps/broken/app.yaml": "namespace: $NS\n",
	"apps/broken/bad.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: broken\ndata: [\n",
}

func TestSyncClusterAppsInOrderAndIsolated(t *testing.T) {
	f := newFixture(t)
	f.write(t, baseRepo)
	res := f.sync(t)

	base, web, broken := appByName(res, "base"), appByName(res, "web"), appByName(res, "broken")
	if base.Phase != PhaseSynced || web.Phase != PhaseSynced {
		t.Fatalf("base %s %v, web %s %v: want both Synced", base.Phase, base.Error, web.Phase, web.Error)
	}
	if web.Health.Status != health.Current {
		t.Errorf("web health = %+v, want Current", web.Health)
	}
	if cm := f.configMap(t, "web"); cm == nil || cm.Data["version"] != "1.0.0" || cm.Data["greeting"] != "hello" || cm.Data["color"] != "blue" {
		t.Errorf("web ConfigMap = %+v, want substituted version, app var and cluster var", cm)
	}
	if cm := f.configMap(t, "base"); cm == nil || cm.Data["env"] != "dev" {
		t.Errorf("base ConfigMap = %+v, want the cluster label substituted", cm)
	}
	// The broken app fails with its file named; the others synced anyway.
	if broken.Phase != PhaseFailed || broken.Error == nil || broken.Error.Stage != StageRender || !strings.Contains(broken.Error.Message, "apps/broken/bad.yaml") {
		t.Errorf("broken = %s %+v, want a render failure naming apps/broken/bad.yaml", broken.Phase, broken.Error)
	}
}

func TestDependencyNotReadyBlocks(t *testing.T) {
	f := newFixture(t)
	f.write(t, baseRepo)
	f.write(t, map[string]string{"apps/web/app.yaml": "namespace: $NS\ndependsOn: [broken]\n"})
	res := f.sync(t)
	web := appByName(res, "web")
	if web.Phase != PhaseBlocked || !strings.Contains(web.Message, "broken") {
		t.Errorf("web = %s %q, want Blocked on broken", web.Phase, web.Message)
	}
	if f.configMap(t, "web") != nil {
		t.Error("a blocked app was applied")
	}
}

func TestSecondSyncOfUnchangedRepoWritesNothing(t *testing.T) {
	f := newFixture(t)
	f.write(t, baseRepo)
	f.sync(t)
	f.req.Reset()
	f.sync(t)
	if writes, dryRuns, _ := f.req.Counts(); writes != 0 || dryRuns != 0 {
		t.Errorf("unchanged sync made %d writes %v and %d dry-runs %v, want none", writes, f.req.Writes(), dryRuns, f.req.DryRuns())
	}
}

func TestRemovedAppIsPrunedButBadAppsFileNeverPrunes(t *testing.T) {
	f := newFixture(t)
	f.write(t, baseRepo)
	f.sync(t)
	if f.configMap(t, "web") == nil {
		t.Fatal("web not applied")
	}
	// A broken apps.yaml: an error, nothing touched.
	f.write(t, map[string]string{"clusters/dev/apps.yaml": "apps:\n  - name: base\n    version: [\n"})
	if _, err := f.eng.SyncCluster(t.Context(), Request{Root: f.root, Revision: "r2", Cluster: "dev"}); err == nil || !strings.Contains(err.Error(), "clusters/dev/apps.yaml") {
		t.Fatalf("err = %v, want a load error naming clusters/dev/apps.yaml", err)
	}
	if f.configMap(t, "web") == nil {
		t.Fatal("web pruned after a failed load")
	}
	// web removed from apps.yaml: pruned.
	f.write(t, map[string]string{"clusters/dev/apps.yaml": "apps:\n  - name: base\n    version: \"1\"\n"})
	res := f.sync(t)
	if len(res.Removed) != 1 || res.Removed[0].App != "web" || res.Removed[0].Phase != PhaseRemoved {
		t.Fatalf("removed = %+v, want web removed", res.Removed)
	}
	if f.configMap(t, "web") != nil {
		t.Error("web's ConfigMap still exists")
	}
	if f.configMap(t, "base") == nil {
		t.Error("base pruned too")
	}
}

func TestSpansPerStage(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	f := newTracedFixture(t, tp.Tracer("test"))
	f.write(t, baseRepo)
	f.sync(t)
	byName := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = append(byName[s.Name()], s)
	}
	// base and web synced (render, health, and apply's plan/apply/prune); broken failed at render.
	for name, want := range map[string]int{"app": 3, "render": 3, "plan": 2, "apply": 2, "prune": 2, "health": 2} {
		if got := len(byName[name]); got != want {
			t.Errorf("%d %q spans, want %d", got, name, want)
		}
	}
	apps := map[string]bool{}
	for _, s := range byName["app"] {
		apps[s.SpanContext().SpanID().String()] = true
	}
	for _, name := range []string{"render", "plan", "apply", "prune", "health"} {
		for _, s := range byName[name] {
			if !apps[s.Parent().SpanID().String()] {
				t.Errorf("span %q is not a child of an app span", name)
			}
		}
	}
}

func TestRenderErrorPrunesNothing(t *testing.T) {
	f := newFixture(t)
	f.write(t, baseRepo)
	f.write(t, map[string]string{"apps/web/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-extra}\n"})
	f.sync(t)
	if f.configMap(t, "web-extra") == nil {
		t.Fatal("web-extra not applied")
	}
	// web loses extra.yaml but its other file now fails to render: nothing of web may go.
	f.write(t, map[string]string{
		"apps/web/extra.yaml": "",
		"apps/web/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata:\n  x: \"${NOT_DEFINED}\"\n",
	})
	res := f.sync(t)
	if web := appByName(res, "web"); web.Phase != PhaseFailed || web.Error.Stage != StageRender {
		t.Fatalf("web = %s %+v, want a render failure", web.Phase, web.Error)
	}
	for _, name := range []string{"web", "web-extra"} {
		if f.configMap(t, name) == nil {
			t.Errorf("%s pruned after a render error", name)
		}
	}
}

func TestObjectsOutsideAllowedNamespacesFailClearly(t *testing.T) {
	f := newFixture(t)
	f.eng.cfg.Namespaces = []string{f.ns}
	f.write(t, baseRepo)
	f.write(t, map[string]string{
		"clusters/dev/apps.yaml": "apps:\n  - name: base\n    version: \"1\"\n  - name: escape\n    version: \"1\"\n  - name: global\n    version: \"1\"\n",
		"apps/escape/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: escape, namespace: kube-system}\n",
		"apps/global/role.yaml":  "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: outpost-test-global}\nrules: []\n",
	})
	res := f.sync(t)
	if base := appByName(res, "base"); base.Phase != PhaseSynced {
		t.Errorf("base = %s %+v, want Synced in its allowed namespace", base.Phase, base.Error)
	}
	for name, want := range map[string]string{
		"escape": `ConfigMap/kube-system/escape: namespace "kube-system" is not allowed`,
		"global": "ClusterRole.rbac.authorization.k8s.io/outpost-test-global: cluster-scoped objects are not allowed",
	} {
		ar := appByName(res, name)
		if ar.Phase != PhaseFailed || ar.Error == nil || !strings.Contains(ar.Error.Message, want) || ar.Apply != nil {
			t.Errorf("%s = %s %+v, want a failure before apply containing %q", name, ar.Phase, ar.Error, want)
		}
	}
	if _, err := f.cs.CoreV1().ConfigMaps("kube-system").Get(t.Context(), "escape", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused object was created (err %v)", err)
	}
	if _, err := f.cs.RbacV1().ClusterRoles().Get(t.Context(), "outpost-test-global", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the refused ClusterRole was created (err %v)", err)
	}
}

// TestAttackEmptyAppsListNeverEmptiesTheCluster: a commit that leaves apps.yaml with
// no apps (a cluster removed and re-added through the hub, a truncated edit) prunes
// nothing, and says why; "allowEmpty: true" at the top of the file removes them all
// (security review H3).
func TestAttackEmptyAppsListNeverEmptiesTheCluster(t *testing.T) {
	f := newFixture(t)
	f.write(t, baseRepo)
	f.sync(t)
	if f.configMap(t, "web") == nil || f.configMap(t, "base") == nil {
		t.Fatal("apps not applied")
	}
	f.write(t, map[string]string{"clusters/dev/apps.yaml": "apps: []\n"})
	res := f.sync(t)
	if len(res.Removed) != 2 {
		t.Fatalf("removed = %+v, want base and web refused", res.Removed)
	}
	for _, r := range res.Removed {
		var empty *EmptyClusterError
		if r.Phase != PhaseFailed || r.Error == nil || r.Error.Stage != StagePrune || !errors.As(r.Error.Err, &empty) ||
			!strings.Contains(r.Error.Message, `add "allowEmpty: true" at the top of clusters/dev/apps.yaml`) {
			t.Errorf("%s: %+v, want a failed prune saying why", r.App, r)
		}
	}
	if f.configMap(t, "web") == nil || f.configMap(t, "base") == nil {
		t.Fatal("an empty apps.yaml pruned apps")
	}
	// One app still listed: the other is removed as usual.
	f.write(t, map[string]string{"clusters/dev/apps.yaml": "apps:\n  - name: base\n    version: \"1\"\n"})
	if res := f.sync(t); len(res.Removed) != 1 || res.Removed[0].Phase != PhaseRemoved {
		t.Fatalf("removed = %+v, want web removed", res.Removed)
	}
	f.write(t, map[string]string{"clusters/dev/apps.yaml": "allowEmpty: true\napps: []\n"})
	if res := f.sync(t); len(res.Removed) != 1 || res.Removed[0].App != "base" || res.Removed[0].Phase != PhaseRemoved {
		t.Fatalf("removed = %+v, want base removed with allowEmpty", res.Removed)
	}
	if f.configMap(t, "base") != nil {
		t.Error("base kept although apps.yaml allows an empty cluster")
	}
}

// TestAttackClusterScopedObjectWithAllowedNamespace: a ClusterRoleBinding carrying
// metadata.namespace of an allowed namespace used to pass the namespace check and
// then be applied cluster-wide (security review M2). It is a render error naming the
// object; under --namespaces any cluster-scoped kind is refused before any request.
func TestAttackClusterScopedObjectWithAllowedNamespace(t *testing.T) {
	f := newFixture(t)
	f.eng.cfg.Namespaces = []string{f.ns}
	f.write(t, map[string]string{
		"clusters/dev/apps.yaml": "apps:\n  - name: sneaky\n    version: \"1\"\n  - name: plain\n    version: \"1\"\n",
		"apps/sneaky/crb.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: outpost-test-sneaky, namespace: $NS}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: default, namespace: $NS}]\n",
		"apps/plain/crb.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: outpost-test-plain}\n" +
			"roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\nsubjects: [{kind: ServiceAccount, name: default, namespace: $NS}]\n",
	})
	f.req.Reset()
	res := f.sync(t)
	for name, want := range map[string]string{
		"sneaky": `metadata.namespace "` + f.ns + `" is set on cluster-scoped kind ClusterRoleBinding.rbac.authorization.k8s.io`,
		"plain":  "ClusterRoleBinding.rbac.authorization.k8s.io/outpost-test-plain: cluster-scoped objects are not allowed",
	} {
		ar := appByName(res, name)
		if ar == nil || ar.Phase != PhaseFailed || ar.Error == nil || !strings.Contains(ar.Error.Message, want) || ar.Apply != nil {
			t.Errorf("%s = %+v, want a failure before apply containing %q", name, ar, want)
		}
	}
	if w := f.req.Writes(); len(w) != 0 {
		t.Errorf("write requests %v, want none", w)
	}
	for _, name := range []string{"outpost-test-sneaky", "outpost-test-plain"} {
		if _, err := f.cs.RbacV1().ClusterRoleBindings().Get(t.Context(), name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("the refused ClusterRoleBinding %s was created (err %v)", name, err)
		}
	}
}

// The full resync of the same revision leaves drift of a drift: report app (the
// default) in place and undoes it for drift: correct.
func TestResyncFollowsTheDriftPolicy(t *testing.T) {
	for policy, want := range map[string]string{"report": "edited", "correct": "1.0.0"} {
		t.Run(policy, func(t *testing.T) {
			f := newFixture(t)
			f.write(t, baseRepo)
			f.write(t, map[string]string{"apps/web/app.yaml": "namespace: $NS\ndependsOn: [base]\ndrift: " + policy + "\n"})
			f.sync(t)
			cm := f.configMap(t, "web")
			cm.Data["version"] = "edited"
			if _, err := f.cs.CoreV1().ConfigMaps(f.ns).Update(t.Context(), cm, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
				t.Fatal(err)
			}
			web := appByName(f.sync(t), "web")
			if web.Phase != PhaseSynced {
				t.Fatalf("web = %s %v after the resync, want Synced", web.Phase, web.Error)
			}
			if got := f.configMap(t, "web").Data["version"]; got != want {
				t.Errorf("drift: %s: data.version = %q after a resync, want %q", policy, got, want)
			}
		})
	}
}
