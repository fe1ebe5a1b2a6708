package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/object"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/plan"
)

func TestSyncAppNoOpCostsNothing(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 100)

	start := time.Now()
	res := h.sync(t, desired, Options{})
	first := time.Since(start)
	writes, dryRuns, reads := h.req.Counts()
	t.Logf("first sync of 100 objects: %s, %d writes, %d dry-runs, %d reads", first, writes, dryRuns, reads)
	if res.Changes.Counts.Created != 100 || res.Inventory != 100 {
		t.Fatalf("first sync: %+v, inventory %d; want 100 created", res.Changes.Counts, res.Inventory)
	}

	h.req.Reset()
	start = time.Now()
	res = h.sync(t, desired, Options{})
	second := time.Since(start)
	writes, dryRuns, reads = h.req.Counts()
	t.Logf("second sync: %s, %d writes, %d dry-runs, %d reads", second, writes, dryRuns, reads)
	if writes != 0 || dryRuns != 0 {
		t.Errorf("unchanged re-sync sent %d writes and %d dry-runs, want 0:\n  %s\n  %s",
			writes, dryRuns, joined(h.req.Writes()), joined(h.req.DryRuns()))
	}
	if res.Changes.Counts.Skipped != 100 || res.InventoryWrites != 0 {
		t.Errorf("second sync: %+v, %d inventory writes; want 100 skipped, 0 writes",
			res.Changes.Counts, res.InventoryWrites)
	}
}

func TestSyncAppChangeUpdatesOnlyThatObject(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 12)
	h.sync(t, desired, Options{})
	before := map[string]string{}
	for _, o := range desired {
		before[o.GetName()] = h.live(t, o).GetResourceVersion()
	}

	changed := make([]*unstructured.Unstructured, len(desired))
	for i, o := range desired {
		changed[i] = o.DeepCopy()
	}
	_ = unstructured.SetNestedField(byName(changed, "cm-4").Object, "changed", "data", "index")
	_ = unstructured.SetNestedField(byName(changed, "secret-5").Object, "new-password", "stringData", "password")

	h.req.Reset()
	res := h.sync(t, changed, Options{})
	writes, dryRuns, _ := h.req.Counts()
	t.Logf("one ConfigMap and one Secret changed: %d writes, %d dry-runs:\n  %s", writes, dryRuns, joined(h.req.Writes()))
	if c := res.Changes.Counts; c.Configured != 2 || c.Skipped != 10 {
		t.Fatalf("counts %+v, want 2 configured, 10 skipped", c)
	}
	// Two applies and one inventory update; one dry-run per changed object.
	if writes != 3 || dryRuns != 2 {
		t.Errorf("%d writes, %d dry-runs; want 3 and 2", writes, dryRuns)
	}
	for _, o := range desired {
		rv := h.live(t, o).GetResourceVersion()
		touched := o.GetName() == "cm-4" || o.GetName() == "secret-5"
		if (rv != before[o.GetName()]) != touched {
			t.Errorf("%s: resourceVersion %s → %s, touched=%v", o.GetName(), before[o.GetName()], rv, touched)
		}
	}

	cm, _ := res.Changes.Get(object.RefOf(byName(changed, "cm-4")))
	if len(cm.Diff) != 1 || cm.Diff[0].Path != "data.index" || cm.Diff[0].New != "changed" {
		t.Errorf("ConfigMap diff %v, want data.index → changed", cm.Diff)
	}
	sec, _ := res.Changes.Get(object.RefOf(byName(changed, "secret-5")))
	out, _ := json.Marshal(res)
	if len(sec.Diff) != 1 || sec.Diff[0].Path != "data.password" ||
		strings.Contains(string(out), "new-password") || strings.Contains(string(out), "pw-5") {
		t.Errorf("Secret diff %v must show data.password changed, masked; result JSON: %s", sec.Diff, out)
	}
	if got, _ := sec.Diff[0].New.(string); !strings.HasPrefix(got, plan.MaskPrefix) {
		t.Errorf("Secret diff new value %q is not masked", got)
	}
}

func TestSyncAppPrunesRemovedObjects(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 8)
	h.sync(t, desired, Options{})

	gone := byName(desired, "deploy-3")
	res := h.sync(t, without(desired, "deploy-3"), Options{})
	if c := res.Changes.Counts; c.Deleted != 1 || c.Skipped != 7 || !res.Pruned {
		t.Fatalf("counts %+v pruned=%v, want 1 deleted, 7 skipped", c, res.Pruned)
	}
	if h.live(t, gone) != nil {
		t.Error("removed Deployment still exists")
	}
	if inv := h.inventory(t); len(inv) != 7 {
		t.Errorf("inventory has %d entries, want 7", len(inv))
	}
}

func TestSyncAppDoesNotPruneAfterFailedApply(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 4)
	h.sync(t, desired, Options{})

	kept := byName(desired, "svc-2")
	invalid := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: bad}, data: {"not a key!": x}}`)
	next := append(without(desired, "svc-2"), invalid)
	res, err := h.s.SyncApp(t.Context(), h.app, owned(h.app, next), Options{})
	var oe *ObjectError
	if !errors.As(err, &oe) || oe.Object.Name != "bad" || oe.Immutable || oe.Reason != metav1.StatusReasonInvalid {
		t.Fatalf("err = %v, want an *ObjectError for ConfigMap bad (Invalid)", err)
	}
	if res.Pruned || res.PruneSkipped != PruneSkipApplyFailed || res.Changes.Counts.Failed != 1 {
		t.Errorf("result %+v, want prune skipped (apply-failed) and 1 failed", res)
	}
	if h.live(t, kept) == nil {
		t.Error("object removed from the app was pruned although the apply failed")
	}
	if inv := h.inventory(t); len(inv) != 5 {
		t.Errorf("inventory has %d entries, want 5 (4 applied + the failed one)", len(inv))
	}

	// Prune cannot be forced onto an incomplete apply.
	inv, err := inventory.NewStore(h.c, inventory.StoreOptions{}).Load(t.Context(), h.app)
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.s.build(t.Context(), h.app, mustPrepare(t, h, owned(h.app, next)), inv)
	if err != nil {
		t.Fatal(err)
	}
	applied, _ := h.s.Apply(t.Context(), p, Options{})
	var refused *PruneRefusedError
	if _, err := h.s.Prune(t.Context(), applied, Options{}); !errors.As(err, &refused) || refused.Reason != RefusedIncomplete {
		t.Errorf("Prune after a failed apply: %v, want *PruneRefusedError (apply-incomplete)", err)
	}
	if _, err := h.s.Prune(t.Context(), &Applied{}, Options{}); !errors.As(err, &refused) {
		t.Errorf("Prune of a hand-made Applied: %v, want *PruneRefusedError", err)
	}

	// Once the object is fixed, the next sync prunes.
	res = h.sync(t, without(desired, "svc-2"), Options{})
	if !res.Pruned || h.live(t, kept) != nil {
		t.Errorf("after fixing the app: pruned=%v, svc-2 exists=%v", res.Pruned, h.live(t, kept) != nil)
	}
}

func mustPrepare(t *testing.T, h *harness, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	t.Helper()
	out, err := h.s.prepare(h.app, objs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// An object without the app's ownership labels could be applied but never pruned (prune
// deletes only what carries them): apply refuses it before any request, naming it.
func TestSyncAppRefusesObjectsWithoutOwnershipLabels(t *testing.T) {
	tests := map[string]func(u *unstructured.Unstructured){
		"no labels":       func(u *unstructured.Unstructured) { u.SetLabels(nil) },
		"another app":     func(u *unstructured.Unstructured) { object.DefaultOwner().SetLabels(u, "other") },
		"another manager": func(u *unstructured.Unstructured) { object.Owner{ManagedBy: "helm"}.WithDefaults().SetLabels(u, "x") },
	}
	for name, edit := range tests {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			desired := owned(h.app, objects(t, h.ns, 2))
			edit(desired[1])
			h.req.Reset()
			_, err := h.s.SyncApp(t.Context(), h.app, desired, Options{})
			if err == nil || !strings.Contains(err.Error(), object.RefOf(desired[1]).String()) || !strings.Contains(err.Error(), "ownership labels") {
				t.Fatalf("err = %v, want a refusal naming %s and the ownership labels", err, object.RefOf(desired[1]))
			}
			if writes, _, _ := h.req.Counts(); writes != 0 {
				t.Errorf("refused sync wrote: %s", joined(h.req.Writes()))
			}
		})
	}
}

func TestSyncAppRefusesToEmptyAnApp(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 3)
	h.sync(t, desired, Options{})

	h.req.Reset()
	_, err := h.s.SyncApp(t.Context(), h.app, nil, Options{})
	var refused *PruneRefusedError
	if !errors.As(err, &refused) || refused.Reason != RefusedEmpty || refused.Objects != 3 {
		t.Fatalf("empty desired set: err = %v, want *PruneRefusedError (empty, 3 objects)", err)
	}
	if writes, _, _ := h.req.Counts(); writes != 0 {
		t.Errorf("refused sync wrote: %s", joined(h.req.Writes()))
	}
	for _, o := range desired {
		if h.live(t, o) == nil {
			t.Errorf("%s deleted by a refused sync", o.GetName())
		}
	}

	res := h.sync(t, nil, Options{AllowEmpty: true})
	if res.Changes.Counts.Deleted != 3 || res.Inventory != 0 {
		t.Errorf("AllowEmpty: %+v inventory %d, want 3 deleted, empty inventory", res.Changes.Counts, res.Inventory)
	}
	for _, o := range desired {
		if h.live(t, o) != nil {
			t.Errorf("%s survived an allowed empty sync", o.GetName())
		}
	}
}

func TestSyncAppCRDAndCustomResourceInOnePass(t *testing.T) {
	h := newHarness(t)
	group := h.ns + ".example.com"
	crd := fromYAML(t, "", strings.ReplaceAll(widgetCRD, "example.com", group))
	cr := fromYAML(t, h.ns, `{apiVersion: `+group+`/v1, kind: Widget, metadata: {name: w}, spec: {size: 3}}`)

	res := h.sync(t, []*unstructured.Unstructured{cr, crd}, Options{})
	if c := res.Changes.Counts; c.Created != 2 {
		t.Fatalf("counts %+v, want the CRD and the Widget created", c)
	}
	if h.live(t, cr) == nil {
		t.Fatal("Widget not created")
	}

	h.req.Reset()
	res = h.sync(t, []*unstructured.Unstructured{cr, crd}, Options{})
	if writes, dryRuns, _ := h.req.Counts(); writes != 0 || dryRuns != 0 || res.Changes.Counts.Skipped != 2 {
		t.Errorf("re-sync: %+v, %d writes, %d dry-runs; want both skipped and no request:\n  %s\n  %s",
			res.Changes.Counts, writes, dryRuns, joined(h.req.Writes()), joined(h.req.DryRuns()))
	}
}

const widgetCRD = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
`

// errKilled stands for the agent being killed.
var errKilled = errors.New("killed")

func TestSyncAppKilledBetweenApplyAndInventoryWrite(t *testing.T) {
	var killAt Step
	h := newHarness(t, func(c *Config) {
		c.Interrupter = InterruptFunc(func(_ context.Context, _ string, step Step) error {
			if step == killAt {
				return errKilled
			}
			return nil
		})
	})
	all := objects(t, h.ns, 6) // cm-0 secret-1 svc-2 deploy-3 cm-4 secret-5
	h.sync(t, all[:4], Options{})

	// Run 2 drops svc-2, adds cm-4, and is killed after applying.
	killAt = StepApplied
	run2 := append(without(all[:4], "svc-2"), byName(all, "cm-4"))
	if _, err := h.s.SyncApp(t.Context(), h.app, owned(h.app, run2), Options{}); !errors.Is(err, errKilled) {
		t.Fatalf("run 2: err = %v, want killed", err)
	}
	if h.live(t, byName(all, "cm-4")) == nil || h.live(t, byName(all, "svc-2")) == nil {
		t.Fatal("run 2 should have applied cm-4 and not pruned svc-2")
	}
	if inv := h.inventory(t); len(inv) != 5 {
		t.Fatalf("inventory after the kill has %d entries, want the union of 5", len(inv))
	}

	// Run 3: Git moved on: cm-4 is gone again and secret-5 is new. cm-4 was applied by
	// the killed run, never confirmed: it must be pruned, not orphaned; svc-2 too.
	killAt = ""
	run3 := append(without(all[:4], "svc-2"), byName(all, "secret-5"))
	res := h.sync(t, run3, Options{})
	if c := res.Changes.Counts; c.Deleted != 2 || c.Created != 1 || c.Skipped != 3 {
		t.Errorf("run 3: %+v, want 2 deleted (svc-2, cm-4), 1 created, 3 skipped", c)
	}
	for _, o := range []string{"cm-4", "svc-2"} {
		if h.live(t, byName(all, o)) != nil {
			t.Errorf("%s orphaned", o)
		}
	}
	for _, o := range run3 {
		if h.live(t, o) == nil {
			t.Errorf("%s wrongly deleted", o.GetName())
		}
	}
	if inv := h.inventory(t); len(inv) != 4 {
		t.Errorf("inventory has %d entries, want 4", len(inv))
	}

	// Killed right after the union was written, before any apply: the next run with
	// the new object removed again deletes nothing it should keep.
	killAt = StepUnionSaved
	if _, err := h.s.SyncApp(t.Context(), h.app, owned(h.app, append(run3, byName(all, "svc-2"))), Options{}); !errors.Is(err, errKilled) {
		t.Fatalf("run 4: err = %v, want killed", err)
	}
	killAt = ""
	res = h.sync(t, run3, Options{})
	if c := res.Changes.Counts; c.Deleted != 1 || c.Skipped != 4 {
		t.Errorf("run 5: %+v, want svc-2's entry dropped (deleted: it never existed) and 4 skipped", c)
	}
	if h.live(t, byName(all, "svc-2")) != nil {
		t.Error("svc-2 exists although no completed run applied it")
	}
}

func TestSyncAppImmutableFields(t *testing.T) {
	h := newHarness(t)
	job := func(image string) *unstructured.Unstructured {
		return fromYAML(t, h.ns, `
apiVersion: batch/v1
kind: Job
metadata: {name: migrate}
spec:
  template:
    spec:
      restartPolicy: Never
      containers: [{name: m, image: "`+image+`"}]
`)
	}
	cm := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: cfg}, data: {v: "1"}}`)
	deploy := fromYAML(t, h.ns, deploymentYAML("web", "web", "nginx:1"))
	h.sync(t, []*unstructured.Unstructured{cm, deploy, job("m:1")}, Options{})
	uids := map[string]string{"web": string(h.live(t, deploy).GetUID()), "migrate": string(h.live(t, job("")).GetUID())}

	cm2 := cm.DeepCopy()
	_ = unstructured.SetNestedField(cm2.Object, "2", "data", "v")
	deploy2 := fromYAML(t, h.ns, deploymentYAML("web", "api", "nginx:1"))
	next := []*unstructured.Unstructured{cm2, deploy2, job("m:2")}

	res, err := h.s.SyncApp(t.Context(), h.app, owned(h.app, next), Options{})
	if err == nil {
		t.Fatal("immutable changes applied without force")
	}
	for _, name := range []string{"web", "migrate"} {
		var ch Change
		for _, e := range res.Changes.Entries {
			if e.Name == name {
				ch = e
			}
		}
		var oe *ObjectError
		if ch.Action != ActionFailed || !ch.Immutable || !errors.As(ch.Err, &oe) || !oe.Immutable || oe.Op != OpDryRun {
			t.Errorf("%s: %s immutable=%v err=%v, want failed on an immutable field", name, ch.Action, ch.Immutable, ch.Err)
		}
	}
	if c := res.Changes.Counts; c.Configured != 1 || c.Failed != 2 {
		t.Errorf("counts %+v: the ConfigMap must still be configured", c)
	}

	res = h.sync(t, next, Options{Force: true})
	if c := res.Changes.Counts; c.Recreated != 2 || c.Skipped != 1 {
		t.Fatalf("with force: %+v, want 2 recreated, 1 skipped", c)
	}
	for name, u := range map[string]*unstructured.Unstructured{"web": deploy2, "migrate": job("")} {
		live := h.live(t, u)
		if live == nil || string(live.GetUID()) == uids[name] {
			t.Errorf("%s not recreated (live %v)", name, live != nil)
		}
	}
	sel, _, _ := unstructured.NestedString(h.live(t, deploy2).Object, "spec", "selector", "matchLabels", "app")
	if sel != "api" {
		t.Errorf("recreated Deployment selector app=%q, want api", sel)
	}
}

func TestSyncAppLeavesDisownedObjects(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 3)
	h.sync(t, desired, Options{})

	// A person takes svc-2 over for another app.
	taken := h.live(t, byName(desired, "svc-2"))
	labels := taken.GetLabels()
	labels[object.LabelApp] = "someone-else"
	taken.SetLabels(labels)
	if err := h.c.Update(t.Context(), taken); err != nil {
		t.Fatal(err)
	}
	res := h.sync(t, without(desired, "svc-2"), Options{})
	if c := res.Changes.Counts; c.Disowned != 1 || c.Deleted != 0 {
		t.Errorf("counts %+v, want svc-2 disowned", c)
	}
	if h.live(t, taken) == nil {
		t.Error("an object taken over by someone else was deleted")
	}
	if inv := h.inventory(t); len(inv) != 2 {
		t.Errorf("inventory has %d entries, want 2", len(inv))
	}
}

func TestSyncAppRepairsClusterChanges(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 4)
	h.sync(t, desired, Options{})

	// Someone edits cm-0 and deletes svc-2.
	cm := h.live(t, byName(desired, "cm-0"))
	_ = unstructured.SetNestedField(cm.Object, "edited", "data", "index")
	if err := h.c.Update(t.Context(), cm, client.FieldOwner("kubectl-edit")); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Delete(t.Context(), h.live(t, byName(desired, "svc-2"))); err != nil {
		t.Fatal(err)
	}
	res := h.sync(t, desired, Options{})
	if c := res.Changes.Counts; c.Configured != 1 || c.Created != 1 || c.Skipped != 2 {
		t.Errorf("counts %+v, want cm-0 configured back, svc-2 created, 2 skipped", c)
	}
	if v, _, _ := unstructured.NestedString(h.live(t, cm).Object, "data", "index"); v != "0" {
		t.Errorf("cm-0 data.index = %q, want 0 restored", v)
	}

	// A status-like change that leaves Outpost's fields alone costs one dry-run,
	// then nothing.
	cm = h.live(t, cm)
	cm.SetAnnotations(map[string]string{"note": "added by someone"})
	if err := h.c.Update(t.Context(), cm, client.FieldOwner("kubectl-annotate")); err != nil {
		t.Fatal(err)
	}
	h.req.Reset()
	res = h.sync(t, desired, Options{})
	writes, dryRuns, _ := h.req.Counts()
	if c := res.Changes.Counts; c.Unchanged != 1 || c.Skipped != 3 || dryRuns != 1 || writes != 1 {
		t.Errorf("after a foreign annotation: %+v, %d writes (want only the inventory record), %d dry-runs",
			c, writes, dryRuns)
	}
	h.req.Reset()
	h.sync(t, desired, Options{})
	if writes, dryRuns, _ := h.req.Counts(); writes != 0 || dryRuns != 0 {
		t.Errorf("next sync: %d writes, %d dry-runs, want none", writes, dryRuns)
	}
}

func TestPlanPreviewChangesNothing(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 4)
	h.sync(t, desired, Options{})
	next := without(desired, "svc-2")
	next[0] = next[0].DeepCopy()
	_ = unstructured.SetNestedField(next[0].Object, "x", "data", "index")

	h.req.Reset()
	p, err := h.s.Plan(t.Context(), h.app, owned(h.app, next), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Counts(); c.Update != 1 || c.Delete != 1 || c.Unchanged != 2 {
		t.Errorf("plan counts %+v, want 1 update, 1 delete, 2 unchanged", c)
	}
	if writes, dryRuns, _ := h.req.Counts(); writes != 0 || dryRuns != 1 {
		t.Errorf("Plan sent %d writes and %d dry-runs, want 0 and 1", writes, dryRuns)
	}
}

func TestAPIListerPagesAndSelects(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 28) // 7 of each kind
	h.sync(t, desired, Options{})
	other := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: not-ours}}`)
	if err := h.c.Create(t.Context(), other); err != nil {
		t.Fatal(err)
	}

	l := NewAPILister(h.c, object.DefaultOwner())
	l.pageSize = 3
	entries := h.inventory(t)
	entries = append(entries, inventory.Entry{Ref: object.Ref{Group: "example.com", Kind: "Gone", Namespace: h.ns, Name: "x"}, Version: "v1"})
	live, err := l.LiveVersions(t.Context(), h.app, entries)
	if err != nil {
		t.Fatal(err)
	}
	if len(live) != 28 {
		t.Errorf("LiveVersions found %d objects, want the app's 28 (pages of 3; unlabelled and unserved kinds left out)", len(live))
	}
	for _, o := range desired {
		if rv := live[object.RefOf(o)]; rv == "" || rv != h.live(t, o).GetResourceVersion() {
			t.Errorf("%s: live version %q", o.GetName(), rv)
		}
	}
}

// A Fence that no longer holds (the agent lost its Lease while paused) stops a sync
// before its first write: no inventory save, no apply, no prune.
func TestSyncAppWritesNothingOnceFenced(t *testing.T) {
	lost := errors.New("leadership not renewed")
	var fenced atomic.Bool
	h := newHarness(t, func(c *Config) {
		c.Fence = func() error {
			if fenced.Load() {
				return lost
			}
			return nil
		}
	})
	desired := objects(t, h.ns, 4)
	h.sync(t, desired, Options{})

	fenced.Store(true)
	h.req.Reset()
	next := append(without(desired, "deploy-3"), fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: new}}`))
	_, err := h.s.SyncApp(t.Context(), h.app, owned(h.app, next), Options{})
	if !errors.Is(err, lost) {
		t.Fatalf("err = %v, want the fence's error", err)
	}
	if writes, _, _ := h.req.Counts(); writes != 0 {
		t.Fatalf("a fenced sync wrote: %s", joined(h.req.Writes()))
	}
	if h.live(t, byName(desired, "deploy-3")) == nil {
		t.Fatal("a fenced sync pruned")
	}
}

// A Fence lost in the middle of a stage (the agent paused by SIGSTOP after the
// stage's check, resumed after another replica took the Lease) stops the writes of
// the objects not yet sent: each apply and each delete checks it, not only each
// stage.
func TestFenceLostMidStageStopsTheRest(t *testing.T) {
	lost := errors.New("leadership not renewed")
	var h *harness
	var armed atomic.Bool
	limit := 0
	h = newHarness(t, func(c *Config) {
		c.Concurrency = 1
		c.Fence = func() error {
			if armed.Load() {
				if w, _, _ := h.req.Counts(); w >= limit {
					return lost
				}
			}
			return nil
		}
	})
	desired := configMaps(t, h.ns, 40)
	h.sync(t, desired[:20], Options{})

	// Apply: the inventory save and 3 applies pass; the other 17 new objects are not sent.
	h.req.Reset()
	limit = 4
	armed.Store(true)
	_, err := h.s.SyncApp(t.Context(), h.app, owned(h.app, desired), Options{})
	if !errors.Is(err, lost) {
		t.Fatalf("err = %v, want the fence's error", err)
	}
	if writes := h.req.Writes(); len(writes) > limit {
		t.Fatalf("%d writes after the fence was lost mid-stage (limit %d): %s", len(writes)-limit, limit, joined(writes))
	}

	// Prune: the inventory save and 3 deletes pass; the other deletes are not sent.
	armed.Store(false)
	h.sync(t, desired, Options{})
	h.req.Reset()
	armed.Store(true)
	_, err = h.s.SyncApp(t.Context(), h.app, owned(h.app, desired[:10]), Options{})
	if !errors.Is(err, lost) {
		t.Fatalf("prune: err = %v, want the fence's error", err)
	}
	if writes := h.req.Writes(); len(writes) > limit {
		t.Fatalf("prune: %d writes after the fence was lost mid-stage (limit %d): %s", len(writes)-limit, limit, joined(writes))
	}
}

// configMaps returns n ConfigMaps in ns: one stage of the apply.
func configMaps(t testing.TB, ns string, n int) []*unstructured.Unstructured {
	t.Helper()
	out := make([]*unstructured.Unstructured, 0, n)
	for i := range n {
		out = append(out, fromYAML(t, ns, fmt.Sprintf(`{apiVersion: v1, kind: ConfigMap, metadata: {name: cm-%d}, data: {index: "%d"}}`, i, i)))
	}
	return out
}
