package engine

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/chart"
	"github.com/outpost-gitops/outpost/sync/drift"
	"github.com/outpost-gitops/outpost/sync/object"
)

// packChart packs a chart "web" at version whose Deployment leaves replicas to an
// HPA and whose ConfigMap names the version.
func packChart(t *testing.T, version string) []byte {
	t.Helper()
	files := map[string]string{
		"web/Chart.yaml":        "apiVersion: v2\nname: web\nversion: " + version + "\n",
		"web/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {chart: {{ .Chart.Version | quote }}, color: {{ .Values.color | quote }}}\n",
		"web/templates/deploy.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "nginx:{{ .Chart.Version }}"}]}
`,
		"web/templates/hpa.yaml": "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: web}\n" +
			"spec: {scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}, minReplicas: 2, maxReplicas: 5}\n",
		"web/values.yaml": "color: blue\n",
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	zw.Close()
	return buf.Bytes()
}

// TestHelmRemoteChartVersionBumpDriftAndHPA: a chart from an HTTP chart repository,
// its version from apps.yaml (what `outpost set` writes). A version bump is fetched
// and applied; an unchanged version is never fetched again; a change by another
// manager to a chart object is reported with that manager; the HPA scaling the
// Deployment is no drift (the chart leaves replicas alone).
func TestHelmRemoteChartVersionBumpDriftAndHPA(t *testing.T) {
	var archiveGets atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("apiVersion: v1\nentries:\n  web:\n    - {version: 1.0.0, urls: [web-1.0.0.tgz]}\n    - {version: 1.1.0, urls: [web-1.1.0.tgz]}\n"))
	})
	for _, v := range []string{"1.0.0", "1.1.0"} {
		data := packChart(t, v)
		mux.HandleFunc("/web-"+v+".tgz", func(w http.ResponseWriter, r *http.Request) { archiveGets.Add(1); w.Write(data) })
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	f := newFixture(t)
	fetcher, err := chart.NewFetcher(chart.FetcherConfig{CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	f.eng.cfg.Render.Charts = fetcher
	f.write(t, map[string]string{
		"clusters/dev/apps.yaml": "apps:\n  - name: web\n    version: \"1.0.0\"\n",
		"apps/web/app.yaml":      "namespace: $NS\nhelm:\n  repo: " + srv.URL + "\n  chart: web\n",
	})
	if web := appByName(f.sync(t), "web"); web.Phase != PhaseSynced {
		t.Fatalf("web = %s %+v", web.Phase, web.Error)
	}
	if got := f.configMap(t, "web").Data["chart"]; got != "1.0.0" {
		t.Fatalf("chart %q applied, want 1.0.0", got)
	}
	f.sync(t)
	if n := archiveGets.Load(); n != 1 {
		t.Errorf("the archive was downloaded %d times for two syncs of one version, want once (cache)", n)
	}

	// outpost set web 1.1.0 --cluster dev: a commit changing apps.yaml.
	f.write(t, map[string]string{"clusters/dev/apps.yaml": "apps:\n  - name: web\n    version: \"1.1.0\"\n"})
	res := f.sync(t)
	web := appByName(res, "web")
	if web.Phase != PhaseSynced || f.configMap(t, "web").Data["chart"] != "1.1.0" {
		t.Fatalf("after the bump: web %s %+v, chart %q", web.Phase, web.Error, f.configMap(t, "web").Data["chart"])
	}

	c, err := client.New(env.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The HPA's controller scales the Deployment through /scale (as kube-controller-manager does).
	dep := &appsv1.Deployment{}
	if err := c.Get(t.Context(), client.ObjectKey{Namespace: f.ns, Name: "web"}, dep); err != nil {
		t.Fatal(err)
	}
	scale := &autoscalingv1.Scale{Spec: autoscalingv1.ScaleSpec{Replicas: 4}}
	if err := c.SubResource("scale").Update(t.Context(), dep, client.WithSubResourceBody(scale), client.FieldOwner("kube-controller-manager")); err != nil {
		t.Fatal(err)
	}
	// Someone edits the chart's ConfigMap.
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "web", "namespace": f.ns}, "data": map[string]any{"color": "red"}}}
	if err := c.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(cm), client.FieldOwner("kubectl-edit"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	for _, o := range web.Objects {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Get(t.Context(), client.ObjectKeyFromObject(o), live); err != nil {
			t.Fatal(err)
		}
		rep, err := drift.Detect(object.DefaultOwner(), o, live, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		switch o.GetKind() {
		case "ConfigMap":
			if len(rep.Fields) != 1 || rep.Fields[0].Path != "data.color" || rep.Fields[0].Manager != "kubectl-edit" || rep.Fields[0].Live != "red" {
				t.Errorf("ConfigMap drift = %+v, want data.color changed by kubectl-edit", rep.Fields)
			}
		default:
			if rep.Drifted() {
				t.Errorf("%s drifted: %+v (the HPA's replicas are not the chart's)", object.RefOf(o), rep.Fields)
			}
		}
	}
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(dep), dep); err != nil || *dep.Spec.Replicas != 4 {
		t.Fatalf("replicas %v, err %v", dep.Spec.Replicas, err)
	}
	// A resync keeps the HPA's replicas.
	f.sync(t)
	if err := c.Get(t.Context(), client.ObjectKeyFromObject(dep), dep); err != nil || *dep.Spec.Replicas != 4 {
		t.Errorf("after a resync replicas = %v (err %v), want the HPA's 4", dep.Spec.Replicas, err)
	}
}
