package inventory

import (
	"testing"

	"github.com/outpost-gitops/outpost/sync/object"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func ref(kind, ns, name string) object.Ref { return object.Ref{Kind: kind, Namespace: ns, Name: name} }

func TestEntryOf(t *testing.T) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apps/v1")
	u.SetKind("Deployment")
	u.SetNamespace("web")
	u.SetName("api")
	want := object.Ref{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "api"}
	if e := EntryOf(u); e.Version != "v1" || e.Ref != want || !e.Record.IsZero() {
		t.Errorf("EntryOf = %+v", e)
	}
}

func TestUnion(t *testing.T) {
	a, b, c := ref("ConfigMap", "n", "a"), ref("ConfigMap", "n", "b"), ref("ConfigMap", "n", "c")
	rec := Record{Hash: "h1", ResourceVersion: "7"}
	tests := map[string]struct {
		stored, desired, want []Entry
	}{
		"empty": {},
		"all new": {
			desired: []Entry{{Ref: b, Version: "v1"}, {Ref: a, Version: "v1"}},
			want:    []Entry{{Ref: a, Version: "v1"}, {Ref: b, Version: "v1"}},
		},
		"keeps stored records and stale entries": {
			stored:  []Entry{{Ref: a, Version: "v1", Record: rec}, {Ref: c, Version: "v1", Record: rec}},
			desired: []Entry{{Ref: a, Version: "v1"}, {Ref: b, Version: "v1"}},
			want: []Entry{{Ref: a, Version: "v1", Record: rec}, {Ref: b, Version: "v1"},
				{Ref: c, Version: "v1", Record: rec}},
		},
		"takes the desired version": {
			stored:  []Entry{{Ref: a, Version: "v1beta1", Record: rec}},
			desired: []Entry{{Ref: a, Version: "v1"}},
			want:    []Entry{{Ref: a, Version: "v1", Record: rec}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Union(tc.stored, tc.desired)
			if !Equal(got, tc.want) {
				t.Errorf("Union =\n%+v\nwant\n%+v", got, tc.want)
			}
		})
	}
}

func TestStale(t *testing.T) {
	a, b := ref("ConfigMap", "n", "a"), ref("ConfigMap", "n", "b")
	tests := map[string]struct {
		stored  []Entry
		desired []object.Ref
		want    []object.Ref
	}{
		"nothing stored":   {desired: []object.Ref{a}},
		"all desired":      {stored: []Entry{{Ref: a}, {Ref: b}}, desired: []object.Ref{b, a}},
		"one left":         {stored: []Entry{{Ref: a}, {Ref: b}}, desired: []object.Ref{a}, want: []object.Ref{b}},
		"nothing desired":  {stored: []Entry{{Ref: a}, {Ref: b}}, want: []object.Ref{a, b}},
		"other namespace":  {stored: []Entry{{Ref: a}}, desired: []object.Ref{ref("ConfigMap", "m", "a")}, want: []object.Ref{a}},
		"other kind, same": {stored: []Entry{{Ref: a}}, desired: []object.Ref{ref("Secret", "n", "a")}, want: []object.Ref{a}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Stale(tc.stored, tc.desired)
			if len(got) != len(tc.want) {
				t.Fatalf("Stale = %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i].Ref != tc.want[i] {
					t.Errorf("Stale[%d] = %v, want %v", i, got[i].Ref, tc.want[i])
				}
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	a, b := ref("ConfigMap", "n", "a"), ref("ConfigMap", "n", "b")
	got := Normalize([]Entry{{Ref: b}, {Ref: a, Version: "old"}, {Ref: a, Version: "new"}})
	want := []Entry{{Ref: a, Version: "new"}, {Ref: b}}
	if !Equal(got, want) {
		t.Errorf("Normalize = %+v, want %+v", got, want)
	}
}
