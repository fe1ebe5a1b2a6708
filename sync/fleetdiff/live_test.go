package fleetdiff

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/render"
	"github.com/outpost-gitops/outpost/sync/repo"
)

// With a Planner for a cluster, the diff shows what applying the head would really
// change there: here a field another manager changed on the live object, which the
// repository diff cannot see.
func TestLiveShowsAFieldAnotherManagerChanged(t *testing.T) {
	ns := env.CreateNamespace(t)
	dir := writeTree(t, map[string]string{
		"clusters/live/cluster.yaml": "labels: {env: test}\n",
		"clusters/live/apps.yaml":    apps("web@1.0"),
		"apps/web/app.yaml":          "namespace: " + ns + "\n",
		"apps/web/cm.yaml":           "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  mode: fast\n  keep: same\n",
	})
	c, err := client.New(env.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	syncer, err := apply.New(apply.Config{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	spec, err := repo.LoadDir(t.Context(), dir, "live")
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(dir, render.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := r.Render(t.Context(), spec, spec.App("web"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syncer.SyncApp(t.Context(), "web", rendered.Objects, apply.Options{}); err != nil {
		t.Fatal(err)
	}

	// Nothing changed yet: no repository diff, no live change.
	res := compute(t, dir, dir, Options{Live: map[string]Planner{"live": syncer}})
	if len(res.Clusters) != 0 {
		t.Fatalf("before any edit: %+v", res.Clusters)
	}

	// Someone edits the live object by hand.
	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetNamespace(ns)
	cm.SetName("web")
	patch := client.RawPatch(types.MergePatchType, []byte(`{"data":{"mode":"slow"}}`))
	if err := c.Patch(t.Context(), cm, patch, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}

	res = compute(t, dir, dir, Options{Live: map[string]Planner{"live": syncer}})
	if len(res.Clusters) != 1 || len(res.Clusters[0].Apps) != 0 || len(res.Clusters[0].Live) != 1 {
		t.Fatalf("after a live edit: %+v, want one cluster with a live change only", res.Clusters)
	}
	la := res.Clusters[0].Live[0]
	if la.App != "web" || la.Error != "" || len(la.Objects) != 1 {
		t.Fatalf("live app %+v", la)
	}
	it := la.Objects[0]
	if it.Kind != "ConfigMap" || len(it.Diff) != 1 || it.Diff[0].Path != "data.mode" || it.Diff[0].Old != "slow" || it.Diff[0].New != "fast" {
		t.Fatalf("live item %+v, want data.mode slow → fast", it)
	}
}
