package apply

import (
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/sync/object"
)

// editData sets data.index of the live ConfigMap named like u, as fieldManager with
// an update (kubectl edit's way: the manager takes the field).
func (h *harness) editData(t *testing.T, u *unstructured.Unstructured, value, fieldManager string) {
	t.Helper()
	cm := h.live(t, u)
	_ = unstructured.SetNestedField(cm.Object, value, "data", "index")
	if err := h.c.Update(t.Context(), cm, client.FieldOwner(fieldManager)); err != nil {
		t.Fatal(err)
	}
}

func dataIndex(t *testing.T, h *harness, u *unstructured.Unstructured) string {
	t.Helper()
	live := h.live(t, u)
	if live == nil {
		return "<deleted>"
	}
	v, _, _ := unstructured.NestedString(live.Object, "data", "index")
	return v
}

// The periodic full resync of an app with drift: report must not undo the drift it
// reports; a new desired state takes the fields back; a stale write under Outpost's own
// field manager (a former leader's) is undone whatever the policy.
func TestKeepDriftLeavesOthersChanges(t *testing.T) {
	h := newHarness(t)
	desired := objects(t, h.ns, 4) // cm-0, secret-1, svc-2, deploy-3
	keep := Options{KeepDrift: true}
	h.sync(t, desired, keep)
	cm0 := byName(desired, "cm-0")

	h.editData(t, cm0, "edited", "kubectl-edit")
	if err := h.c.Delete(t.Context(), h.live(t, byName(desired, "svc-2"))); err != nil {
		t.Fatal(err)
	}
	h.req.Reset()
	res := h.sync(t, desired, keep)
	if c := res.Changes.Counts; c.Kept != 2 || c.Skipped != 2 || c.Configured+c.Created != 0 {
		t.Errorf("resync with KeepDrift: counts %+v, want cm-0 and svc-2 kept, 2 skipped, nothing written", c)
	}
	if writes, _, _ := h.req.Counts(); writes != 0 {
		t.Errorf("resync with KeepDrift: %d writes, want 0", writes)
	}
	if got := dataIndex(t, h, cm0); got != "edited" {
		t.Errorf("cm-0 data.index = %q after a resync with KeepDrift, want the edit kept", got)
	}
	if h.live(t, byName(desired, "svc-2")) != nil {
		t.Error("svc-2 recreated by a resync with KeepDrift, want it left deleted (reported as drift)")
	}
	for _, e := range h.inventory(t) {
		if e.Record.IsZero() {
			t.Errorf("inventory lost the record of %s", e.Ref)
		}
	}

	// A stale write by Outpost's own field manager (a former leader's) is not
	// someone's drift: undone, while cm-0 and svc-2 stay kept.
	secret := owned(h.app, []*unstructured.Unstructured{fromYAML(t, h.ns, `{apiVersion: v1, kind: Secret, metadata: {name: secret-1}, stringData: {password: "old"}}`)})[0]
	if _, err := h.s.serverApply(t.Context(), secret); err != nil {
		t.Fatal(err)
	}
	res = h.sync(t, desired, keep)
	if c := res.Changes.Counts; c.Configured != 1 || c.Kept != 2 {
		t.Errorf("after a stale write under Outpost's manager: counts %+v, want secret-1 configured back, cm-0 and svc-2 kept", c)
	}

	// A new desired state of cm-0 is applied, taking the field back; svc-2's desired
	// state changed too, so it is created again.
	next := objects(t, h.ns, 4)
	_ = unstructured.SetNestedField(byName(next, "cm-0").Object, "new", "data", "index")
	_ = unstructured.SetNestedField(byName(next, "svc-2").Object, map[string]any{"app": "changed"}, "spec", "selector")
	res = h.sync(t, next, keep)
	if c := res.Changes.Counts; c.Configured != 1 || c.Created != 1 || c.Kept != 0 {
		t.Errorf("new desired state: counts %+v, want cm-0 configured, svc-2 created", c)
	}
	if got := dataIndex(t, h, cm0); got != "new" {
		t.Errorf("cm-0 data.index = %q, want the new desired value", got)
	}

	// Without KeepDrift (drift: correct) the same edit is undone.
	h.editData(t, cm0, "edited again", "kubectl-edit")
	res = h.sync(t, next, Options{})
	if c := res.Changes.Counts; c.Configured != 1 || c.Kept != 0 {
		t.Errorf("resync without KeepDrift: counts %+v, want cm-0 configured back", c)
	}
	if got := dataIndex(t, h, cm0); got != "new" {
		t.Errorf("cm-0 data.index = %q after a correcting resync, want new", got)
	}
}

// A create-only object is created when missing and otherwise never written.
func TestCreateOnlyObjectIsWrittenOnce(t *testing.T) {
	h := newHarness(t)
	gen := func(password string) []*unstructured.Unstructured {
		s := fromYAML(t, h.ns, `{apiVersion: v1, kind: Secret, metadata: {name: generated}, stringData: {password: x}}`)
		s.SetAnnotations(map[string]string{object.ApplyAnnotation: object.ApplyCreateOnly})
		_ = unstructured.SetNestedField(s.Object, password, "stringData", "password")
		return []*unstructured.Unstructured{s, fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: plain}, data: {index: "0"}}`)}
	}
	password := func() string {
		s := h.live(t, gen("")[0])
		if s == nil {
			return "<deleted>"
		}
		v, _, _ := unstructured.NestedString(s.Object, "data", "password")
		return v
	}
	res := h.sync(t, gen("first"), Options{})
	if c := res.Changes.Counts; c.Created != 2 {
		t.Fatalf("first sync: %+v, want both created", c)
	}
	first := password()
	for name, opts := range map[string]Options{"correct": {}, "report": {KeepDrift: true}} {
		h.req.Reset()
		res = h.sync(t, gen("render for "+name), opts)
		if c := res.Changes.Counts; c.Kept != 1 || c.Configured != 0 {
			t.Errorf("%s: a new render of the create-only Secret: counts %+v, want it kept", name, c)
		}
		if got := password(); got != first {
			t.Errorf("%s: create-only Secret rewritten: data.password %q, want %q", name, got, first)
		}
		if writes, dryRuns, _ := h.req.Counts(); dryRuns != 0 || writes > 1 {
			t.Errorf("%s: %d writes (only the inventory record allowed), %d dry-runs", name, writes, dryRuns)
		}
	}
	// Deleted: created again (drift: correct).
	if err := h.c.Delete(t.Context(), h.live(t, gen("")[0])); err != nil {
		t.Fatal(err)
	}
	res = h.sync(t, gen("third"), Options{})
	if c := res.Changes.Counts; c.Created != 1 {
		t.Errorf("after deleting the create-only Secret: %+v, want it created", c)
	}
	if got := password(); got == first || got == "<deleted>" {
		t.Errorf("create-only Secret after deletion: data.password %q, want the new render's", got)
	}
}

// The preview (Plan) says what SyncApp would do under each policy, without writing:
// with KeepDrift, an edited object whose desired state did not change is kept (with
// the fields that differ) and a deleted one stays deleted; without, both are taken
// back; a new desired state is an update either way. A create-only object that exists
// is kept whatever the policy.
func TestPlanPreviewFollowsKeepDrift(t *testing.T) {
	h := newHarness(t)
	generated := func(value string) *unstructured.Unstructured {
		u := fromYAML(t, h.ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: generated}, data: {index: x}}`)
		u.SetAnnotations(map[string]string{object.ApplyAnnotation: object.ApplyCreateOnly})
		_ = unstructured.SetNestedField(u.Object, value, "data", "index")
		return u
	}
	desired := append(objects(t, h.ns, 4), generated("first")) // cm-0, secret-1, svc-2, deploy-3, generated
	keep := Options{KeepDrift: true}
	h.sync(t, desired, keep)
	h.editData(t, byName(desired, "cm-0"), "edited", "kubectl-edit")
	if err := h.c.Delete(t.Context(), h.live(t, byName(desired, "svc-2"))); err != nil {
		t.Fatal(err)
	}
	preview := func(desired []*unstructured.Unstructured, opts Options) map[string]string {
		t.Helper()
		h.req.Reset()
		p, err := h.s.Plan(t.Context(), h.app, owned(h.app, desired), opts)
		if err != nil {
			t.Fatal(err)
		}
		if writes, _, _ := h.req.Counts(); writes != 0 {
			t.Errorf("Plan sent %d writes, want 0", writes)
		}
		out := map[string]string{}
		for _, it := range p.Items {
			s := string(it.Action) + " " + string(it.Reason)
			for _, f := range it.Diff {
				s += " " + f.String()
			}
			out[it.Name] = s
		}
		return out
	}
	next := append(objects(t, h.ns, 4), generated("second"))
	_ = unstructured.SetNestedField(byName(next, "cm-0").Object, "new", "data", "index")
	tests := map[string]struct {
		desired []*unstructured.Unstructured
		opts    Options
		want    map[string]string
	}{
		"report": {desired, keep, map[string]string{
			"cm-0": `keep drift-kept data.index: "edited" → "0"`, "secret-1": "unchanged recorded",
			"svc-2": "keep deleted-kept", "deploy-3": "unchanged recorded", "generated": "unchanged recorded"}},
		"correct": {desired, Options{}, map[string]string{
			"cm-0": `update dry-run data.index: "edited" → "0"`, "secret-1": "unchanged recorded",
			"svc-2": "create dry-run", "deploy-3": "unchanged recorded", "generated": "unchanged recorded"}},
		"report, desired changed": {next, keep, map[string]string{
			"cm-0": `update dry-run data.index: "edited" → "new"`, "secret-1": "unchanged recorded",
			"svc-2": "keep deleted-kept", "deploy-3": "unchanged recorded", "generated": "keep create-only"}},
		"correct, desired changed": {next, Options{}, map[string]string{
			"cm-0": `update dry-run data.index: "edited" → "new"`, "secret-1": "unchanged recorded",
			"svc-2": "create dry-run", "deploy-3": "unchanged recorded", "generated": "keep create-only"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := preview(tc.desired, tc.opts); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("plan\n got %q\nwant %q", got, tc.want)
			}
		})
	}

	// What the preview said is what the sync does.
	res := h.sync(t, desired, keep)
	if c := res.Changes.Counts; c.Kept != 2 || c.Configured+c.Created != 0 {
		t.Errorf("sync after the \"report\" preview: counts %+v, want cm-0 and svc-2 kept", c)
	}
}
