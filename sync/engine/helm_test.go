package engine

import (
	"context"
	"errors"
	"strings"
	"testing"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/chart"
	"github.com/outpost-gitops/outpost/sync/object"
)

// helmRepo is one app "web" rendering the chart charts/app: a ConfigMap, a CRD in
// crds/, a pre hook and a post hook (ConfigMaps: ready at once on a bare apiserver).
var helmRepo = map[string]string{
	"clusters/dev/apps.yaml":       "apps:\n  - name: web\n    version: \"1.0.0\"\n",
	"apps/web/app.yaml":            "namespace: $NS\nhelm:\n  path: charts/app\n  values: {rev: \"1\"}\n",
	"charts/app/Chart.yaml":        "apiVersion: v2\nname: app\nversion: 0.1.0\n",
	"charts/app/values.yaml":       "rev: \"0\"\n",
	"charts/app/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {rev: {{ .Values.rev | quote }}}\n",
	"charts/app/templates/pre.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pre\n  annotations: {helm.sh/hook: pre-install,pre-upgrade}\n" +
		"data: {rev: {{ .Values.rev | quote }}}\n",
	"charts/app/templates/post.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: post\n  annotations: {helm.sh/hook: post-install, helm.sh/hook-delete-policy: hook-succeeded}\n" +
		"data: {rev: {{ .Values.rev | quote }}}\n",
	"charts/app/crds/gadgets.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.$NS.example.com}
spec:
  group: $NS.example.com
  names: {kind: Gadget, plural: gadgets}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object}}
`,
}

func TestHelmAppHooksAndCRDs(t *testing.T) {
	f := newFixture(t)
	f.write(t, helmRepo)
	res := f.sync(t)
	web := appByName(res, "web")
	if web.Phase != PhaseSynced {
		t.Fatalf("web = %s %+v", web.Phase, web.Error)
	}
	if f.configMap(t, "web") == nil || f.configMap(t, "pre") == nil {
		t.Fatal("chart object or pre hook missing")
	}
	if f.configMap(t, "post") != nil {
		t.Error("post hook with hook-succeeded still there")
	}
	if web.Apply.Inventory != 2 {
		t.Errorf("inventory holds %d objects, want 2 (the CRD and the ConfigMap; hooks are not in it)", web.Apply.Inventory)
	}
	preUID := f.configMap(t, "pre").UID

	// Unchanged: hooks do not run again.
	f.sync(t)
	if f.configMap(t, "pre").UID != preUID {
		t.Error("pre hook re-created although the render did not change")
	}

	// New values: the pre hook runs again (before-hook-creation replaces it) before the apply.
	f.write(t, map[string]string{"apps/web/app.yaml": "namespace: $NS\nhelm:\n  path: charts/app\n  values: {rev: \"2\"}\n"})
	res = f.sync(t)
	if web := appByName(res, "web"); web.Phase != PhaseSynced {
		t.Fatalf("web = %s %+v", web.Phase, web.Error)
	}
	pre := f.configMap(t, "pre")
	if pre.UID == preUID || pre.Data["rev"] != "2" || f.configMap(t, "web").Data["rev"] != "2" {
		t.Errorf("pre hook %s rev %s, web rev %s; want a new pre hook and rev 2", pre.UID, pre.Data["rev"], f.configMap(t, "web").Data["rev"])
	}

	// The CRD leaves the chart: it stays in the cluster (as with Helm).
	f.write(t, map[string]string{"charts/app/crds/gadgets.yaml": ""})
	res = f.sync(t)
	if web := appByName(res, "web"); web.Phase != PhaseSynced {
		t.Fatalf("web = %s %+v", web.Phase, web.Error)
	}
	c, err := client.New(env.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	crd := &apiextv1.CustomResourceDefinition{}
	if err := c.Get(t.Context(), client.ObjectKey{Name: "gadgets." + f.ns + ".example.com"}, crd); err != nil || crd.DeletionTimestamp != nil {
		t.Fatalf("CRD from crds/ pruned: err %v, deletionTimestamp %v", err, crd.DeletionTimestamp)
	}
	if crd.Annotations[object.PruneAnnotation] != object.PruneDisabled {
		t.Errorf("CRD annotations = %v", crd.Annotations)
	}
	_ = c.Delete(context.Background(), crd)
}

func TestHelmChartFetchErrorPrunesNothing(t *testing.T) {
	f := newFixture(t)
	f.write(t, helmRepo)
	f.write(t, map[string]string{"charts/app/crds/gadgets.yaml": ""})
	if web := appByName(f.sync(t), "web"); web.Phase != PhaseSynced {
		t.Fatalf("web = %s %+v", web.Phase, web.Error)
	}
	// The app moves to a remote chart whose registry cannot be reached.
	f.eng.cfg.Render.Charts = fetchFunc(func(context.Context, chart.Ref) ([]byte, error) {
		return nil, errors.New("dial tcp 10.0.0.1:443: connect: connection refused")
	})
	f.write(t, map[string]string{"apps/web/app.yaml": "namespace: $NS\nhelm:\n  oci: oci://registry.example.com/charts/app\n  version: 0.2.0\n"})
	res := f.sync(t)
	web := appByName(res, "web")
	if web.Phase != PhaseFailed || web.Error.Stage != StageRender {
		t.Fatalf("web = %s %+v, want a render failure", web.Phase, web.Error)
	}
	if f.configMap(t, "web") == nil {
		t.Error("the last applied ConfigMap was pruned after a chart fetch error")
	}
	if _, err := f.cs.CoreV1().ConfigMaps(f.ns).Get(t.Context(), "pre", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Error("pre hook deleted after a fetch error")
	}

	// The registry answers, but the chart fails provenance verification: the same.
	f.eng.cfg.Render.Charts = fetchFunc(func(_ context.Context, ref chart.Ref) ([]byte, error) {
		if !ref.Verify {
			t.Errorf("chart %s fetched without helm.verify", ref)
		}
		return nil, &chart.VerifyError{Ref: ref, Reason: chart.ReasonMismatch, Err: errors.New("app-0.2.0.tgz is sha256:1, the provenance file says sha256:2")}
	})
	f.write(t, map[string]string{"apps/web/app.yaml": "namespace: $NS\nhelm:\n  oci: oci://registry.example.com/charts/app\n  version: 0.2.0\n  verify: true\n"})
	web = appByName(f.sync(t), "web")
	if web.Phase != PhaseFailed || web.Error.Stage != StageRender || !strings.Contains(web.Error.Message, "the archive does not match its provenance file") {
		t.Fatalf("web = %s %+v, want a render failure naming the verification", web.Phase, web.Error)
	}
	if f.configMap(t, "web") == nil {
		t.Error("the last applied ConfigMap was pruned after a chart verification failure")
	}
	if _, err := f.cs.CoreV1().ConfigMaps(f.ns).Get(t.Context(), "pre", metav1.GetOptions{}); apierrors.IsNotFound(err) {
		t.Error("pre hook deleted after a verification failure")
	}
}

type fetchFunc func(context.Context, chart.Ref) ([]byte, error)

func (f fetchFunc) Fetch(ctx context.Context, ref chart.Ref) ([]byte, error) { return f(ctx, ref) }

// TestHelmPreHookInANewNamespace: on the first sync into a namespace that does not
// exist yet, the app's Namespace is applied before the pre hooks that need it, and
// still enters the app's inventory.
func TestHelmPreHookInANewNamespace(t *testing.T) {
	f := newFixture(t)
	f.write(t, helmRepo)
	f.write(t, map[string]string{
		"charts/app/crds/gadgets.yaml": "",
		"apps/web/app.yaml":            "namespace: $NS-h\nhelm:\n  path: charts/app\n",
	})
	web := appByName(f.sync(t), "web")
	if web.Phase != PhaseSynced {
		t.Fatalf("web = %s %+v", web.Phase, web.Error)
	}
	if _, err := f.cs.CoreV1().ConfigMaps(f.ns+"-h").Get(t.Context(), "pre", metav1.GetOptions{}); err != nil {
		t.Errorf("pre hook: %v", err)
	}
	if web.Apply.Inventory != 2 {
		t.Errorf("inventory holds %d objects, want 2 (the Namespace and the ConfigMap)", web.Apply.Inventory)
	}
}
