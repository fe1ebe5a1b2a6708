package apply

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/object"
)

// ownershipErr returns the OwnershipError of the object named name in res, or nil.
func ownershipErr(res *Result, name string) *OwnershipError {
	for _, ch := range res.Changes.Entries {
		var oe *OwnershipError
		if ch.Name == name && ch.Action == ActionFailed && errors.As(ch.Err, &oe) {
			return oe
		}
	}
	return nil
}

// syncAs runs SyncApp as app and returns the result, whatever the error.
func (h *harness) syncAs(t *testing.T, app string, desired []*unstructured.Unstructured, opts Options) *Result {
	t.Helper()
	res, _ := h.s.SyncApp(t.Context(), app, owned(app, desired), opts)
	if res == nil {
		t.Fatalf("SyncApp as %s returned no result", app)
	}
	return res
}

// TestAttackAppTakesOverAnotherAppsObject: app A listing an object that app B owns
// gets a conflict naming B; B's label and data stay; A's apply is incomplete, so A
// prunes nothing; and A dropping the object later does not delete it (security review
// M1).
func TestAttackAppTakesOverAnotherAppsObject(t *testing.T) {
	h := newHarness(t)
	mine := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: b-config}, data: {owner: b}}`)
	h.syncAs(t, "app-b", []*unstructured.Unstructured{mine}, Options{})

	theirs := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: b-config}, data: {owner: a}}`)
	other := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: a-config}, data: {x: "1"}}`)
	res := h.syncAs(t, "app-a", []*unstructured.Unstructured{theirs, other}, Options{})
	oe := ownershipErr(res, "b-config")
	if oe == nil || oe.Owner != "app-b" || oe.App != "app-a" || res.Pruned {
		t.Fatalf("A's sync: %+v, want an ownership conflict naming app-b and no prune", res.Changes)
	}
	live := h.live(t, mine)
	if live.GetLabels()[object.LabelApp] != "app-b" {
		t.Errorf("label now %q, want app-b", live.GetLabels()[object.LabelApp])
	}
	if v, _, _ := unstructured.NestedString(live.Object, "data", "owner"); v != "b" {
		t.Errorf("data.owner = %q, want b's value", v)
	}
	// A drops it: its prune leaves B's object alone.
	h.syncAs(t, "app-a", []*unstructured.Unstructured{other}, Options{})
	if h.live(t, mine) == nil {
		t.Fatal("app A deleted app B's object")
	}
}

// TestAttackAppAdoptsUnmanagedObject: an existing object Outpost does not manage (a
// Namespace another team created, kube-system/coredns) is a conflict unless the app
// opts in, on the next cycle too; with adopt it becomes the app's, and only then is it
// pruned when it leaves the app (security review M1).
func TestAttackAppAdoptsUnmanagedObject(t *testing.T) {
	h := newHarness(t)
	ns := fromYAML(t, "", `{apiVersion: v1, kind: Namespace, metadata: {name: `+h.ns+`-team-b, labels: {team: b}}}`)
	if err := h.c.Create(t.Context(), ns.DeepCopy()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.c.Delete(t.Context(), ns.DeepCopy()) })
	desired := []*unstructured.Unstructured{ns}
	for cycle := range 2 { // the second cycle sees it unconfirmed in the inventory
		res := h.syncAs(t, h.app, desired, Options{})
		if oe := ownershipErr(res, ns.GetName()); oe == nil || oe.Owner != "" {
			t.Fatalf("cycle %d: %+v, want a conflict: not managed by Outpost", cycle, res.Changes)
		}
		if got := h.live(t, ns).GetLabels()[object.LabelApp]; got != "" {
			t.Fatalf("cycle %d: unmanaged Namespace labelled %q", cycle, got)
		}
	}
	// Removing it from the app never deletes what the app never managed.
	h.syncAs(t, h.app, objects(t, h.ns, 1), Options{})
	if h.live(t, ns) == nil {
		t.Fatal("an unmanaged Namespace was pruned")
	}

	// With the annotation on the object in Git, the app adopts it.
	annotated := ns.DeepCopy()
	annotated.SetAnnotations(map[string]string{AdoptAnnotation: "true"})
	res := h.syncAs(t, h.app, append(objects(t, h.ns, 1), annotated), Options{})
	if f := res.Changes.Failed(); len(f) != 0 {
		t.Fatalf("adopt by annotation: %+v", f)
	}
	if got := h.live(t, ns).GetLabels()[object.LabelApp]; got != h.app {
		t.Errorf("adopted Namespace labelled %q, want %s", got, h.app)
	}
	// Now it is the app's: leaving the app prunes it.
	res = h.syncAs(t, h.app, objects(t, h.ns, 1), Options{})
	if !res.Pruned || h.live(t, ns) != nil && h.live(t, ns).GetDeletionTimestamp() == nil {
		t.Errorf("adopted Namespace not pruned when it left the app: %+v", res.Changes)
	}
}

// TestAdoptOptionTakesExistingObjects: Options.Adopt (app.yaml adopt: true) takes
// over every existing unmanaged object of the app, never another app's.
func TestAdoptOptionTakesExistingObjects(t *testing.T) {
	h := newHarness(t)
	cm := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: legacy}, data: {k: v}}`)
	if err := h.c.Create(t.Context(), cm.DeepCopy(), client.FieldOwner("kubectl-create")); err != nil {
		t.Fatal(err)
	}
	owned := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: owned}, data: {k: v}}`)
	h.syncAs(t, "other", []*unstructured.Unstructured{owned}, Options{})

	res := h.syncAs(t, h.app, []*unstructured.Unstructured{cm, owned}, Options{Adopt: true})
	if oe := ownershipErr(res, "owned"); oe == nil || oe.Owner != "other" {
		t.Errorf("adopt: another app's object: %+v, want a conflict", res.Changes)
	}
	if got := h.live(t, cm).GetLabels()[object.LabelApp]; got != h.app {
		t.Errorf("legacy labelled %q after adopt, want %s", got, h.app)
	}
}

// A Namespace one app created holds another app's objects too: when the first app
// drops it, prune leaves it in place (deleting it would delete the other app's
// objects with it) and drops it from the first app's inventory.
func TestPruneKeepsANamespaceAnotherAppStillUses(t *testing.T) {
	h := newHarness(t)
	shared := h.ns + "-shared"
	ns := fromYAML(t, "", `{apiVersion: v1, kind: Namespace, metadata: {name: `+shared+`}}`)
	keepA := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: a-keep}}`)
	cmA := fromYAML(t, shared, `{apiVersion: v1, kind: ConfigMap, metadata: {name: a-cm}}`)
	cmB := fromYAML(t, shared, `{apiVersion: v1, kind: ConfigMap, metadata: {name: b-cm}}`)
	appA, appB := h.app+"-a", h.app+"-b"
	if res := h.syncAs(t, appA, []*unstructured.Unstructured{ns, keepA, cmA}, Options{}); res.Changes.Counts.Failed != 0 {
		t.Fatalf("app A: %+v", res.Changes)
	}
	if res := h.syncAs(t, appB, []*unstructured.Unstructured{cmB}, Options{}); res.Changes.Counts.Failed != 0 {
		t.Fatalf("app B: %+v", res.Changes)
	}

	// A drops its Namespace and its object in it: B's object is still there.
	res := h.syncAs(t, appA, []*unstructured.Unstructured{keepA}, Options{})
	if c, ok := res.Changes.Get(object.RefOf(ns)); !ok || c.Action != ActionDisowned {
		t.Fatalf("namespace change %+v, want disowned (left in place)", c)
	}
	live := h.live(t, ns)
	if live == nil || live.GetDeletionTimestamp() != nil {
		t.Fatal("the shared Namespace was deleted with app B's objects in it")
	}
	if h.live(t, cmB) == nil || h.live(t, cmA) != nil {
		t.Fatal("want B's ConfigMap kept and A's pruned")
	}
}
