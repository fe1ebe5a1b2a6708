package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/agent"
	apiv1 "github.com/outpost-gitops/outpost/api/v1"
	"github.com/outpost-gitops/outpost/internal/hubtest"
	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/inventory"
	outpostobject "github.com/outpost-gitops/outpost/sync/object"
)

// The RBAC tests install the built manifests' ServiceAccount, Role, ClusterRoles and
// bindings on the test cluster, mint the agent ServiceAccount's token, and run the
// real agent (agent.Run, in-process) with that token and the configuration the
// DaemonSet gives it. Authorization is the apiserver's own RBAC.
//
// So that tests do not share an identity, each one installs into its own namespace
// (isolate): what the manifests put in outpost-system goes to that namespace, and
// cluster-scoped names get a suffix. Rules are never touched.

// isolate returns copies of objs for one test: objects and ServiceAccount subjects of
// Namespace move to ns, cluster-scoped objects (and the roleRefs naming them) get
// "-"+ns appended to their name, and Namespace objects are left out.
func isolate(t *testing.T, objs []*unstructured.Unstructured, ns string) []*unstructured.Unstructured {
	t.Helper()
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true}
	var out []*unstructured.Unstructured
	for _, o := range objs {
		o = o.DeepCopy()
		switch {
		case o.GetKind() == "Namespace":
			continue
		case clusterScoped[o.GetKind()]:
			o.SetName(o.GetName() + "-" + ns)
		case o.GetNamespace() == Namespace:
			o.SetNamespace(ns)
		case o.GetNamespace() == "":
			t.Fatalf("%s %s: unexpected cluster-scoped kind", o.GetKind(), o.GetName())
		}
		if ref, ok, _ := unstructured.NestedString(o.Object, "roleRef", "kind"); ok && ref == "ClusterRole" {
			name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			_ = unstructured.SetNestedField(o.Object, name+"-"+ns, "roleRef", "name")
		}
		subjects, _, _ := unstructured.NestedSlice(o.Object, "subjects")
		for _, s := range subjects {
			if m := s.(map[string]any); m["kind"] == "ServiceAccount" && m["namespace"] == Namespace {
				m["namespace"] = ns
			}
		}
		if subjects != nil {
			_ = unstructured.SetNestedSlice(o.Object, subjects, "subjects")
		}
		out = append(out, o)
	}
	return out
}

// install applies objs with the admin identity and removes the cluster-scoped ones
// when the test ends.
func install(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	a := newApplier()
	for _, o := range objs {
		if err := a.apply(t.Context(), o); err != nil {
			t.Fatalf("install: %v", err)
		}
		if o.GetNamespace() == "" {
			t.Cleanup(func() { _ = a.delete(context.Background(), o) })
		}
	}
}

func adminClient(t *testing.T) client.Client {
	t.Helper()
	c, err := client.New(env.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// agentIdentity installs the RBAC objects of objs (the DaemonSet's ConfigMap too) and
// returns a client configuration authenticated as the agent's ServiceAccount.
func agentIdentity(t *testing.T, objs []*unstructured.Unstructured, ns string) *rest.Config {
	t.Helper()
	var rbac []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding", "ConfigMap":
			rbac = append(rbac, o)
		}
	}
	install(t, rbac)
	token, err := env.ServiceAccountToken(t.Context(), ns, AgentName)
	if err != nil {
		t.Fatal(err)
	}
	return env.TokenConfig(token)
}

// gitRepo is a GitOps repository on disk, committed with go-git.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	r, err := git.PlainInitWithOptions(dir, &git.PlainInitOptions{InitOptions: git.InitOptions{DefaultBranch: plumbing.NewBranchReferenceName("main")}})
	if err != nil {
		t.Fatal(err)
	}
	wt, err := r.Worktree()
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := wt.Add(name); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := wt.Commit("desired state", &git.CommitOptions{Author: &object.Signature{Name: "Ada", Email: "ada@example.com", When: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	return "file://" + dir
}

// waitApp waits until the newest status of app at the hub stub satisfies cond.
func waitApp(t *testing.T, h *hubtest.Stub, app string, cond func(apiv1.AppStatus, []apiv1.Drift) error) apiv1.AppStatus {
	t.Helper()
	return h.Wait(t, app, 60*time.Second, func(st apiv1.AppStatus, d []apiv1.Drift) bool { return cond(st, d) == nil })
}

// logBuffer collects the agent's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runAgent runs the agent in-process as the DaemonSet of objs configures it, with the
// identity rc, on the Git repository gitURL and reporting to h. It returns the
// agent's logs; the agent stops when the test ends.
func runAgent(t *testing.T, objs []*unstructured.Unstructured, ns string, rc *rest.Config, gitURL string, h *hubtest.Stub) *logBuffer {
	t.Helper()
	cfg := agentConfig(t, objs, agentPod(ns))
	// What only a pod has: the Secret files, the emptyDir, the port; and the test's
	// Git repository and hub.
	cfg.ClusterName = "dev"
	cfg.GitURL = gitURL
	cfg.GitPasswordFile = ""
	cfg.HubURL = h.URL
	cfg.TokenFile = tempFile(t, h.Token+"\n")
	cfg.CacheDir = t.TempDir()
	cfg.ListenAddr = ""
	cfg.GitPollInterval = time.Hour
	cfg.Interval = time.Hour
	cfg.RESTConfig = rc
	if !cfg.LeaderElect {
		t.Fatal("the DaemonSet's agent does not elect a leader")
	}
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.WithoutCancel(t.Context()))
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, cfg, log) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent exited with %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("agent did not stop within 30s")
		}
		if t.Failed() {
			t.Logf("agent logs:\n%s", logs.String())
		}
	})
	return logs
}

// checkLeaseAndInventory checks that the agent took the Lease and wrote the
// inventory of each app in ns.
func checkLeaseAndInventory(t *testing.T, ns string, apps ...string) {
	t.Helper()
	cs := kubernetes.NewForConfigOrDie(env.RESTConfig())
	lease, err := cs.CoordinationV1().Leases(ns).Get(t.Context(), "outpost-agent", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Lease %s/outpost-agent: %v", ns, err)
	}
	if h := lease.Spec.HolderIdentity; h == nil || *h != agentPod(ns).Name {
		t.Errorf("Lease holder %v, want the pod name %s", h, agentPod(ns).Name)
	}
	for _, app := range apps {
		if _, err := cs.CoreV1().ConfigMaps(ns).Get(t.Context(), inventory.ConfigMapName(app), metav1.GetOptions{}); err != nil {
			t.Errorf("inventory of %s in %s: %v", app, ns, err)
		}
	}
}

// checkNoDenial fails when the apiserver refused any of the agent's requests (drift
// watch, health reads, applies).
func checkNoDenial(t *testing.T, logs *logBuffer) {
	t.Helper()
	if s := strings.ToLower(logs.String()); strings.Contains(s, "forbidden") || strings.Contains(s, "cannot list") || strings.Contains(s, "cannot watch") {
		t.Errorf("the apiserver refused some of the agent's requests:\n%s", logs.String())
	}
}

func synced(st apiv1.AppStatus, _ []apiv1.Drift) error {
	if st.Phase != apiv1.PhaseSynced {
		return fmt.Errorf("phase %s, error %+v", st.Phase, st.Error)
	}
	return nil
}

// webApp is an app with a Deployment and a ConfigMap.
func webApp(name, namespace string) map[string]string {
	return map[string]string{
		"apps/" + name + "/app.yaml": "namespace: " + namespace + "\n",
		"apps/" + name + "/config.yaml": `apiVersion: v1
kind: ConfigMap
metadata:
  name: ` + name + `
data:
  version: "${APP_VERSION}"
`,
		"apps/" + name + "/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ` + name + `
spec:
  replicas: 1
  selector:
    matchLabels: {app: ` + name + `}
  template:
    metadata:
      labels: {app: ` + name + `}
    spec:
      containers:
        - name: web
          image: nginx:${APP_VERSION}
`,
	}
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

// get reads kind/namespace/name with the admin identity; nil when it does not exist.
func get(t *testing.T, gvk schema.GroupVersionKind, namespace, name string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	err := adminClient(t).Get(t.Context(), types.NamespacedName{Namespace: namespace, Name: name}, u)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return u
}

var (
	configMapGVK   = schema.GroupVersionKind{Version: "v1", Kind: "ConfigMap"}
	deploymentGVK  = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	clusterRoleGVK = schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRole"}
)

func TestClusterProfileAgentManagesAnyKind(t *testing.T) {
	ns := env.CreateNamespace(t)  // the install namespace
	app := env.CreateNamespace(t) // where the app's namespaced objects go
	objs := isolate(t, build(t, AgentCluster), ns)
	rc := agentIdentity(t, objs, ns)

	role := "outpost-test-" + ns
	t.Cleanup(func() {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(clusterRoleGVK)
		u.SetName(role)
		_ = adminClient(t).Delete(context.Background(), u)
	})
	repo := gitRepo(t, merge(webApp("web", app), map[string]string{
		"clusters/dev/apps.yaml": "apps:\n  - name: web\n    version: \"1.27.0\"\n",
		// A ClusterRole granting what the agent itself does not hold (a non-resource
		// URL): applying it needs the profile's escalate.
		"apps/web/clusterrole.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ` + role + `
rules:
  - nonResourceURLs: [/metrics]
    verbs: [get]
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list]
`,
	}))
	h := hubtest.New(t, "cluster-token")
	logs := runAgent(t, objs, ns, rc, repo, h)

	st := waitApp(t, h, "web", synced)
	if st.Counts.Desired != 3 || st.Counts.Failed != 0 {
		t.Errorf("web counts %+v, want 3 objects applied", st.Counts)
	}
	for _, o := range []struct {
		gvk       schema.GroupVersionKind
		namespace string
		name      string
	}{{deploymentGVK, app, "web"}, {configMapGVK, app, "web"}, {clusterRoleGVK, "", role}} {
		u := get(t, o.gvk, o.namespace, o.name)
		if u == nil || u.GetLabels()["app.kubernetes.io/managed-by"] != "outpost" {
			t.Errorf("%s %s/%s: %v, want applied by outpost", o.gvk.Kind, o.namespace, o.name, u)
		}
	}
	checkLeaseAndInventory(t, ns, "web")
	checkNoDenial(t, logs)
}

func TestNamespacedProfileAgentStaysInItsNamespaces(t *testing.T) {
	ns := env.CreateNamespace(t)     // the install namespace
	tenant := env.CreateNamespace(t) // the one namespace the agent is granted
	other := env.CreateNamespace(t)  // a namespace it is not
	// The user's overlay: the base, the namespaced component, one RoleBinding per
	// tenant namespace and the same list in OUTPOST_NAMESPACES (manifests/README.md).
	overlay := map[string]string{
		"tenant/kustomization.yaml": `resources: [../agent/base, rolebinding.yaml]
components: [../agent/components/namespaced]
configMapGenerator:
  - name: outpost-agent
    namespace: outpost-system
    behavior: merge
    literals: [OUTPOST_NAMESPACES=` + tenant + `]
`,
		"tenant/rolebinding.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: outpost-agent-tenant
  namespace: ` + tenant + `
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: outpost-agent-tenant
subjects:
  - kind: ServiceAccount
    name: outpost-agent
    namespace: outpost-system
`,
	}
	objs := isolate(t, buildOverlay(t, overlay, "tenant"), ns)
	rc := agentIdentity(t, objs, ns)
	if cfg := agentConfig(t, objs, agentPod(ns)); len(cfg.Namespaces) != 1 || cfg.Namespaces[0] != tenant {
		t.Fatalf("agent namespaces %v, want [%s]", cfg.Namespaces, tenant)
	}

	t.Run("the apiserver confines the identity", func(t *testing.T) {
		checkConfined(t, rc, ns, tenant, other)
	})

	repo := gitRepo(t, merge(webApp("web", tenant), map[string]string{
		"clusters/dev/apps.yaml": "apps:\n  - name: web\n    version: \"1.27.0\"\n  - name: escape\n    version: \"1\"\n  - name: global\n    version: \"1\"\n",
		"apps/escape/app.yaml":   "namespace: " + tenant + "\n",
		"apps/escape/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: escape, namespace: " + other + "}\n",
		"apps/global/role.yaml":  "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: outpost-test-" + ns + "}\nrules: []\n",
	}))
	h := hubtest.New(t, "tenant-token")
	logs := runAgent(t, objs, ns, rc, repo, h)

	waitApp(t, h, "web", synced)
	if u := get(t, deploymentGVK, tenant, "web"); u == nil {
		t.Error("the tenant's Deployment was not applied")
	}
	for app, want := range map[string][]string{
		"escape": {"ConfigMap/" + other + "/escape", `namespace "` + other + `" is not allowed`, tenant},
		"global": {"ClusterRole.rbac.authorization.k8s.io/outpost-test-" + ns, "cluster-scoped objects are not allowed", tenant},
	} {
		st := waitApp(t, h, app, func(st apiv1.AppStatus, _ []apiv1.Drift) error {
			if st.Phase != apiv1.PhaseFailed || st.Error == nil {
				return fmt.Errorf("phase %s, error %+v; want Failed", st.Phase, st.Error)
			}
			return nil
		})
		for _, w := range want {
			if !strings.Contains(st.Error.Message, w) {
				t.Errorf("%s reported error %q, want it to name %q", app, st.Error.Message, w)
			}
		}
	}
	if get(t, configMapGVK, other, "escape") != nil {
		t.Error("the ConfigMap outside the agent's namespaces was created")
	}
	if get(t, clusterRoleGVK, "", "outpost-test-"+ns) != nil {
		t.Error("the ClusterRole was created by a namespaced agent")
	}
	checkLeaseAndInventory(t, ns, "web")

	// The drift watch works inside the granted namespace: an out-of-band edit of a
	// field Outpost owns is reported with its manager.
	cs := kubernetes.NewForConfigOrDie(env.RESTConfig())
	cm, err := cs.CoreV1().ConfigMaps(tenant).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["version"] = "edited"
	if _, err := cs.CoreV1().ConfigMaps(tenant).Update(t.Context(), cm, metav1.UpdateOptions{FieldManager: "tenant-admin"}); err != nil {
		t.Fatal(err)
	}
	waitApp(t, h, "web", func(_ apiv1.AppStatus, drift []apiv1.Drift) error {
		for _, d := range drift {
			for _, f := range d.Fields {
				if d.Object.Kind == "ConfigMap" && f.Path == "data.version" && f.Manager == "tenant-admin" {
					return nil
				}
			}
		}
		return fmt.Errorf("drift %+v, want data.version changed by tenant-admin", drift)
	})
	checkNoDenial(t, logs)
}

// checkConfined shows, with the agent's own identity and no check of Outpost's in
// the way, that the apiserver grants the namespaced profile its install namespace
// and its tenant namespace and nothing else, and that the apply engine then fails
// with an error naming the object.
func checkConfined(t *testing.T, rc *rest.Config, ns, tenant, other string) {
	ctx := t.Context()
	cs := kubernetes.NewForConfigOrDie(rc)
	dyn := dynamic.NewForConfigOrDie(rc)
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(rc)))
	cmApply := func(namespace string) error {
		data := fmt.Sprintf(`{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"probe","namespace":%q}}`, namespace)
		_, err := cs.CoreV1().ConfigMaps(namespace).Patch(ctx, "probe", types.ApplyPatchType, []byte(data), metav1.PatchOptions{FieldManager: "outpost"})
		return err
	}
	if err := cmApply(tenant); err != nil {
		t.Errorf("apply in the tenant namespace: %v", err)
	}
	if err := cmApply(other); !apierrors.IsForbidden(err) {
		t.Errorf("apply in another namespace: %v, want Forbidden", err)
	}
	if _, err := cs.CoreV1().ConfigMaps(metav1.NamespaceAll).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list ConfigMaps cluster-wide: %v, want Forbidden", err)
	}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "probe-" + ns}}, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("create a Namespace: %v, want Forbidden", err)
	}
	m, err := mapper.RESTMapping(schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"})
	if err != nil {
		t.Fatal(err)
	}
	cr := []byte(`{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRole","metadata":{"name":"probe-` + ns + `"}}`)
	if _, err := dyn.Resource(m.Resource).Patch(ctx, "probe-"+ns, types.ApplyPatchType, cr, metav1.PatchOptions{FieldManager: "outpost"}); !apierrors.IsForbidden(err) {
		t.Errorf("apply a ClusterRole: %v, want Forbidden", err)
	}
	if _, err := cs.CoordinationV1().Leases(ns).List(ctx, metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Errorf("list Leases: %v, want Forbidden (get, create, update only)", err)
	}

	// The apply engine with this identity, without the agent's --namespaces check: the
	// apiserver's refusal comes back naming the object.
	c, err := client.New(rc, client.Options{Mapper: mapper})
	if err != nil {
		t.Fatal(err)
	}
	// (Its inventory goes to the tenant namespace, out of the agent's sight.)
	syncer, err := apply.New(apply.Config{Client: c, Store: inventory.NewStore(c, inventory.StoreOptions{Namespace: tenant})})
	if err != nil {
		t.Fatal(err)
	}
	escape := &unstructured.Unstructured{}
	escape.SetGroupVersionKind(configMapGVK)
	escape.SetNamespace(other)
	escape.SetName("escape")
	escape.SetLabels(outpostobject.DefaultOwner().Labels("probe"))
	_, err = syncer.SyncApp(ctx, "probe", []*unstructured.Unstructured{escape}, apply.Options{})
	var oe *apply.ObjectError
	if !errors.As(err, &oe) || oe.Reason != metav1.StatusReasonForbidden || oe.Object.Namespace != other || oe.Object.Name != "escape" {
		t.Errorf("sync of a ConfigMap in another namespace: %v, want a Forbidden error naming ConfigMap/%s/escape", err, other)
	}
}
