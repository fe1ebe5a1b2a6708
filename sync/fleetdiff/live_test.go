package fleetdiff

import (
	"fmt"
	"reflect"
	"strings"
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
// repository diff cannot see, and which an app with drift: correct takes back.
func TestLiveShowsAFieldAnotherManagerChanged(t *testing.T) {
	ns := env.CreateNamespace(t)
	dir := writeTree(t, map[string]string{
		"clusters/live/cluster.yaml": "labels: {env: test}\n",
		"clusters/live/apps.yaml":    apps("web@1.0"),
		"apps/web/app.yaml":          "namespace: " + ns + "\ndrift: correct\n",
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
	if _, err := syncer.SyncApp(t.Context(), "web", rendered.Objects, apply.OptionsFor(spec.App("web").Config)); err != nil {
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

// The live preview says what a sync does under each app's drift policy: an object
// whose desired state did not change since it was applied, edited by another field
// manager or deleted, is kept by a drift: report app and taken back by a drift:
// correct one; once Git changes it, both apply it.
func TestLiveFollowsTheDriftPolicy(t *testing.T) {
	ns := env.CreateNamespace(t)
	files := map[string]string{
		"clusters/live/cluster.yaml": "labels: {env: test}\n",
		"clusters/live/apps.yaml":    apps("rep@1.0", "cor@1.0"),
		"apps/rep/app.yaml":          "namespace: " + ns + "\ndrift: report\n",
		"apps/cor/app.yaml":          "namespace: " + ns + "\ndrift: correct\n",
	}
	cm := func(name, mode string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  mode: " + mode + "\n"
	}
	for _, app := range []string{"rep", "cor"} {
		files["apps/"+app+"/cm.yaml"] = cm(app+"-cm", "fast")
		files["apps/"+app+"/gone.yaml"] = cm(app+"-gone", "fast")
	}
	dir := writeTree(t, files)
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
	for _, app := range []string{"rep", "cor"} {
		rendered, err := r.Render(t.Context(), spec, spec.App(app))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := syncer.SyncApp(t.Context(), app, rendered.Objects, apply.OptionsFor(spec.App(app).Config)); err != nil {
			t.Fatal(err)
		}
		obj := func(name string) *unstructured.Unstructured {
			u := &unstructured.Unstructured{}
			u.SetAPIVersion("v1")
			u.SetKind("ConfigMap")
			u.SetNamespace(ns)
			u.SetName(name)
			return u
		}
		patch := client.RawPatch(types.MergePatchType, []byte(`{"data":{"mode":"slow"}}`))
		if err := c.Patch(t.Context(), obj(app+"-cm"), patch, client.FieldOwner("kubectl-edit")); err != nil {
			t.Fatal(err)
		}
		if err := c.Delete(t.Context(), obj(app+"-gone")); err != nil {
			t.Fatal(err)
		}
	}

	// liveOf sums up the live preview: per app, "action name (reason) diff".
	liveOf := func(res *Result) map[string][]string {
		out := map[string][]string{}
		for _, cd := range res.Clusters {
			for _, la := range cd.Live {
				if la.Error != "" {
					t.Errorf("app %s: live error %s", la.App, la.Error)
				}
				for _, it := range la.Objects {
					s := fmt.Sprintf("%s %s (%s)", it.Action, it.Name, it.Reason)
					for _, f := range it.Diff {
						s += " " + f.String()
					}
					out[la.App] = append(out[la.App], s)
				}
			}
		}
		return out
	}
	planners := map[string]Planner{"live": syncer}
	res := compute(t, dir, dir, Options{Live: planners})
	want := map[string][]string{
		"rep": {`keep rep-cm (drift-kept) data.mode: "slow" → "fast"`, "keep rep-gone (deleted-kept)"},
		"cor": {`update cor-cm (dry-run) data.mode: "slow" → "fast"`, "create cor-gone (dry-run)"},
	}
	if got := liveOf(res); !reflect.DeepEqual(got, want) {
		t.Errorf("desired unchanged, live edited and deleted:\n got %q\nwant %q", got, want)
	}
	var text strings.Builder
	if err := WriteText(&text, res, false); err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"kept ConfigMap/" + ns + "/rep-cm (drift: report: another manager's change is left as it is), live → head:",
		"kept deleted ConfigMap/" + ns + "/rep-gone (drift: report: deleted outside Outpost, not created again)",
		"update ConfigMap/" + ns + "/cor-cm (dry-run)",
	} {
		if !strings.Contains(text.String(), line) {
			t.Errorf("text output lacks %q:\n%s", line, text.String())
		}
	}
	var js strings.Builder
	if err := WriteJSON(&js, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(js.String(), `"action": "keep"`) || !strings.Contains(js.String(), `"reason": "deleted-kept"`) {
		t.Errorf("JSON output lacks the keep action and its reason:\n%s", js.String())
	}

	// Git changes both objects of both apps: a sync applies them whatever the policy.
	for _, app := range []string{"rep", "cor"} {
		files["apps/"+app+"/cm.yaml"] = cm(app+"-cm", "faster")
		files["apps/"+app+"/gone.yaml"] = cm(app+"-gone", "faster")
	}
	head := writeTree(t, files)
	res = compute(t, dir, head, Options{Live: planners})
	want = map[string][]string{
		"rep": {`update rep-cm (dry-run) data.mode: "slow" → "faster"`, "create rep-gone (dry-run)"},
		"cor": {`update cor-cm (dry-run) data.mode: "slow" → "faster"`, "create cor-gone (dry-run)"},
	}
	if got := liveOf(res); !reflect.DeepEqual(got, want) {
		t.Errorf("desired changed in Git:\n got %q\nwant %q", got, want)
	}
}
