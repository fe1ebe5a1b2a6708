package apply

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
	"github.com/outpost-gitops/outpost/sync/plan"
)

func TestNextEntries(t *testing.T) {
	ref := func(name string) object.Ref { return object.Ref{Kind: "ConfigMap", Namespace: "n", Name: name} }
	old := inventory.Record{Hash: "old", ResourceVersion: "1"}
	applied := inventory.Record{Hash: "new", ResourceVersion: "2"}
	entry := func(name string, rec inventory.Record) inventory.Entry {
		return inventory.Entry{Ref: ref(name), Version: "v1", Record: rec}
	}
	change := func(name string, a Action, rec inventory.Record) Change {
		return Change{Ref: ref(name), Version: "v1", Action: a, record: rec}
	}
	tests := map[string]struct {
		union           []inventory.Entry
		applied, pruned []Change
		want            []inventory.Entry
	}{
		"records successful applies": {
			union: []inventory.Entry{entry("a", old), entry("b", inventory.Record{}), entry("c", old), entry("d", old)},
			applied: []Change{change("a", ActionConfigured, applied), change("b", ActionCreated, applied),
				change("c", ActionSkipped, old), change("d", ActionUnchanged, applied)},
			want: []inventory.Entry{entry("a", applied), entry("b", applied), entry("c", old), entry("d", applied)},
		},
		"failed apply keeps the previous entry": {
			union:   []inventory.Entry{entry("a", old), entry("b", inventory.Record{})},
			applied: []Change{change("a", ActionFailed, inventory.Record{}), change("b", ActionFailed, inventory.Record{})},
			want:    []inventory.Entry{entry("a", old), entry("b", inventory.Record{})},
		},
		"pruned and disowned leave, failed deletes stay": {
			union:   []inventory.Entry{entry("a", old), entry("x", old), entry("y", old), entry("z", old)},
			applied: []Change{change("a", ActionSkipped, old)},
			pruned: []Change{change("x", ActionDeleted, inventory.Record{}), change("y", ActionDisowned, inventory.Record{}),
				change("z", ActionFailed, inventory.Record{})},
			want: []inventory.Entry{entry("a", old), entry("z", old)},
		},
		"no prune keeps stale entries": {
			union:   []inventory.Entry{entry("a", old), entry("x", old)},
			applied: []Change{change("a", ActionSkipped, old)},
			want:    []inventory.Entry{entry("a", old), entry("x", old)},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := nextEntries(tc.union, newChangeSet(tc.applied), newChangeSet(tc.pruned))
			if !inventory.Equal(got, tc.want) {
				t.Errorf("nextEntries =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestStageOf(t *testing.T) {
	tests := map[string]struct {
		ref     object.Ref
		version string
		want    int
	}{
		"crd":          {object.Ref{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition", Name: "x"}, "v1", stageDefinitions},
		"namespace":    {object.Ref{Kind: "Namespace", Name: "x"}, "v1", stageDefinitions},
		"cluster role": {object.Ref{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "x"}, "v1", stageDefinitions},
		"class":        {object.Ref{Group: "storage.k8s.io", Kind: "StorageClass", Name: "x"}, "v1", stageClasses},
		"deployment":   {object.Ref{Group: "apps", Kind: "Deployment", Namespace: "n", Name: "x"}, "v1", stageResources},
		"custom":       {object.Ref{Group: "example.com", Kind: "Widget", Namespace: "n", Name: "x"}, "v1", stageResources},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := stageOf(tc.ref, tc.version); got != tc.want {
				t.Errorf("stageOf = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNewChangeSetCounts(t *testing.T) {
	ref := func(name string) object.Ref { return object.Ref{Kind: "ConfigMap", Namespace: "n", Name: name} }
	cs := newChangeSet([]Change{
		{Ref: ref("c"), Action: ActionCreated}, {Ref: ref("a"), Action: ActionSkipped},
		{Ref: ref("b"), Action: ActionFailed}, {Ref: ref("d"), Action: ActionDeleted},
		{Ref: ref("e"), Action: ActionSkipped},
	})
	want := Counts{Created: 1, Skipped: 2, Failed: 1, Deleted: 1}
	if cs.Counts != want {
		t.Errorf("Counts = %+v, want %+v", cs.Counts, want)
	}
	if cs.Entries[0].Name != "a" || cs.Entries[4].Name != "e" {
		t.Errorf("entries not sorted by ref: %+v", cs.Entries)
	}
	if f := cs.Failed(); len(f) != 1 || f[0].Name != "b" {
		t.Errorf("Failed() = %+v", f)
	}
}

func TestDecide(t *testing.T) {
	obj := func(createOnly bool) *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("v1")
		u.SetKind("ConfigMap")
		u.SetName("a")
		if createOnly {
			u.SetAnnotations(map[string]string{object.ApplyAnnotation: object.ApplyCreateOnly})
		}
		return u
	}
	item := func(hash string, rec inventory.Record, createOnly bool) *plan.Item {
		return &plan.Item{Hash: hash, Recorded: rec, Object: obj(createOnly)}
	}
	applied := inventory.Record{Hash: "h1", ResourceVersion: "7"}
	report, correct := Options{KeepDrift: true}, Options{}
	tests := map[string]struct {
		it     *plan.Item
		exists bool
		opts   Options
		want   step
	}{
		"report, unchanged desired, live":        {item("h1", applied, false), true, report, stepApplyOwned},
		"report, unchanged desired, deleted":     {item("h1", applied, false), false, report, stepKeepDeleted},
		"report, desired changed, live":          {item("h2", applied, false), true, report, stepApply},
		"report, desired changed, deleted":       {item("h2", applied, false), false, report, stepCreate},
		"report, never confirmed, deleted":       {item("h1", inventory.Record{}, false), false, report, stepCreate},
		"correct, unchanged desired, live":       {item("h1", applied, false), true, correct, stepApply},
		"correct, unchanged desired, deleted":    {item("h1", applied, false), false, correct, stepCreate},
		"create-only exists, correct":            {item("h2", applied, true), true, correct, stepKeepCreateOnly},
		"create-only exists, report":             {item("h1", applied, true), true, report, stepKeepCreateOnly},
		"create-only deleted, correct":           {item("h1", applied, true), false, correct, stepCreate},
		"create-only deleted, report, unchanged": {item("h1", applied, true), false, report, stepKeepDeleted},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := decide(tc.it, tc.exists, tc.opts); got != tc.want {
				t.Errorf("decide = %d, want %d", got, tc.want)
			}
		})
	}
}
