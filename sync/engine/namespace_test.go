package engine

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/object"
)

// nsRepo is one app "web" whose app.yaml sets namespace $NS-app (appYAML is appended),
// with a ConfigMap in it, and one app "keep" so that removing web is not an empty list.
func nsRepo(appYAML string) map[string]string {
	return map[string]string{
		"clusters/dev/apps.yaml": "apps:\n  - name: keep\n    version: \"1\"\n  - name: web\n    version: \"1\"\n",
		"apps/keep/app.yaml":     "namespace: $NS\n",
		"apps/keep/cm.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep}\n",
		"apps/web/app.yaml":      "namespace: $NS-app\n" + appYAML,
		"apps/web/cm.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
	}
}

const webRemoved = "apps:\n  - name: keep\n    version: \"1\"\n"

func (f *fixture) namespace(t *testing.T, name string) *corev1.Namespace {
	t.Helper()
	ns, err := f.cs.CoreV1().Namespaces().Get(t.Context(), name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

// cleanupNamespace deletes name at the end of the test (the test cluster has no
// namespace controller, so a deleted Namespace stays Terminating; that is enough).
func (f *fixture) cleanupNamespace(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = f.cs.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
	})
}

func TestCreateNamespaceCreatesAndPrunesItWithTheApp(t *testing.T) {
	f := newFixture(t)
	appNS := f.ns + "-app"
	f.cleanupNamespace(t, appNS)
	f.write(t, nsRepo(""))
	res := f.sync(t)
	if web := appByName(res, "web"); web.Phase != PhaseSynced || web.Health.Status != health.Current {
		t.Fatalf("web = %s %+v %+v, want Synced and Current (its namespace created)", web.Phase, web.Error, web.Health)
	}
	ns := f.namespace(t, appNS)
	if ns == nil || ns.Labels[object.LabelApp] != "web" {
		t.Fatalf("namespace %s = %+v, want created and labeled for web", appNS, ns)
	}
	// A second sync keeps it (it is the app's) and writes nothing.
	f.req.Reset()
	res = f.sync(t)
	if web := appByName(res, "web"); web.Phase != PhaseSynced {
		t.Fatalf("second sync: web = %s %+v", web.Phase, web.Error)
	}
	if writes, _, _ := f.req.Counts(); writes != 0 {
		t.Errorf("second sync made %d writes %v, want none", writes, f.req.Writes())
	}
	// web removed: its namespace goes with it.
	f.write(t, map[string]string{"clusters/dev/apps.yaml": webRemoved})
	res = f.sync(t)
	if len(res.Removed) != 1 || res.Removed[0].Phase != PhaseRemoved {
		t.Fatalf("removed = %+v, want web removed", res.Removed)
	}
	if ns := f.namespace(t, appNS); ns != nil && ns.DeletionTimestamp == nil {
		t.Errorf("namespace %s still there after its app was removed", appNS)
	}
}

func TestCreateNamespaceLeavesAnExistingNamespaceAlone(t *testing.T) {
	f := newFixture(t)
	appNS := f.ns + "-app"
	if _, err := f.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	f.cleanupNamespace(t, appNS)
	f.write(t, nsRepo(""))
	res := f.sync(t)
	if web := appByName(res, "web"); web.Phase != PhaseSynced {
		t.Fatalf("web = %s %+v, want Synced", web.Phase, web.Error)
	}
	if ns := f.namespace(t, appNS); ns == nil || ns.Labels[object.LabelApp] != "" {
		t.Fatalf("namespace %s = %+v, want it untouched (not adopted)", appNS, ns)
	}
	f.write(t, map[string]string{"clusters/dev/apps.yaml": webRemoved})
	res = f.sync(t)
	if len(res.Removed) != 1 || res.Removed[0].Phase != PhaseRemoved {
		t.Fatalf("removed = %+v, want web removed", res.Removed)
	}
	if ns := f.namespace(t, appNS); ns == nil || ns.DeletionTimestamp != nil {
		t.Errorf("namespace %s = %+v: a namespace the app did not create was pruned", appNS, ns)
	}
}

func TestCreateNamespaceFalseNamesTheNamespaceAndTheOption(t *testing.T) {
	f := newFixture(t)
	appNS := f.ns + "-app"
	f.write(t, nsRepo("createNamespace: false\n"))
	res := f.sync(t)
	web := appByName(res, "web")
	var mne *MissingNamespaceError
	if web.Phase != PhaseFailed || web.Error == nil || !errors.As(web.Error.Err, &mne) {
		t.Fatalf("web = %s %+v, want a MissingNamespaceError", web.Phase, web.Error)
	}
	for _, want := range []string{`namespace "` + appNS + `" does not exist`, "apps/web/app.yaml sets createNamespace: false", "kubectl create namespace " + appNS} {
		if !strings.Contains(web.Error.Message, want) {
			t.Errorf("message %q does not contain %q", web.Error.Message, want)
		}
	}
	if f.namespace(t, appNS) != nil {
		t.Errorf("namespace %s created despite createNamespace: false", appNS)
	}
}

// Two apps of one level share a namespace that does not exist: one creates it and owns
// it, the other only uses it, and both sync.
func TestCreateNamespaceSharedByTwoApps(t *testing.T) {
	f := newFixture(t)
	appNS := f.ns + "-app"
	f.cleanupNamespace(t, appNS)
	files := nsRepo("")
	files["clusters/dev/apps.yaml"] = "apps:\n  - name: keep\n    version: \"1\"\n  - name: web\n    version: \"1\"\n  - name: api\n    version: \"1\"\n"
	files["apps/api/app.yaml"] = "namespace: $NS-app\n"
	files["apps/api/cm.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api}\n"
	f.write(t, files)
	res := f.sync(t)
	for _, app := range []string{"web", "api"} {
		if ar := appByName(res, app); ar.Phase != PhaseSynced {
			t.Errorf("first sync: %s = %s %+v, want Synced", app, ar.Phase, ar.Error)
		}
	}
	owner := f.namespace(t, appNS).Labels[object.LabelApp]
	res = f.sync(t)
	for _, app := range []string{"web", "api"} {
		if ar := appByName(res, app); ar.Phase != PhaseSynced {
			t.Errorf("second sync: %s = %s %+v, want Synced", app, ar.Phase, ar.Error)
		}
	}
	if now := f.namespace(t, appNS).Labels[object.LabelApp]; now != owner || (owner != "web" && owner != "api") {
		t.Errorf("namespace owner %q then %q, want one of the two apps, unchanged", owner, now)
	}
}
