package plan

import (
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
)

func configMap(name string, data map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"namespace": "ns", "name": name},
		"data":     data,
	}}
	return u
}

func mustHash(t *testing.T, u *unstructured.Unstructured) string {
	t.Helper()
	h, err := Hash(u)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestBuild(t *testing.T) {
	a := configMap("a", map[string]any{"k": "v"})
	ha := mustHash(t, a)
	refA := object.RefOf(a)
	refB := object.Ref{Kind: "ConfigMap", Namespace: "ns", Name: "b"}
	recA := inventory.Record{Hash: ha, ResourceVersion: "5"}
	entry := func(r object.Ref, rec inventory.Record) inventory.Entry {
		return inventory.Entry{Ref: r, Version: "v1", Record: rec}
	}
	type want struct {
		action Action
		reason Reason
	}
	tests := map[string]struct {
		desired []*unstructured.Unstructured
		stored  []inventory.Entry
		live    map[object.Ref]string
		want    map[object.Ref]want
	}{
		"new object": {
			desired: []*unstructured.Unstructured{a},
			want:    map[object.Ref]want{refA: {ActionCreate, ReasonNew}},
		},
		"in inventory without record (crashed before confirming)": {
			desired: []*unstructured.Unstructured{a},
			stored:  []inventory.Entry{entry(refA, inventory.Record{})},
			live:    map[object.Ref]string{refA: "5"},
			want:    map[object.Ref]want{refA: {ActionCreate, ReasonUnconfirmed}},
		},
		"desired changed": {
			desired: []*unstructured.Unstructured{a},
			stored:  []inventory.Entry{entry(refA, inventory.Record{Hash: "other", ResourceVersion: "5"})},
			live:    map[object.Ref]string{refA: "5"},
			want:    map[object.Ref]want{refA: {ActionUpdate, ReasonDesiredChanged}},
		},
		"live changed": {
			desired: []*unstructured.Unstructured{a},
			stored:  []inventory.Entry{entry(refA, recA)},
			live:    map[object.Ref]string{refA: "6"},
			want:    map[object.Ref]want{refA: {ActionUpdate, ReasonLiveChanged}},
		},
		"live missing or unlabelled": {
			desired: []*unstructured.Unstructured{a},
			stored:  []inventory.Entry{entry(refA, recA)},
			live:    map[object.Ref]string{},
			want:    map[object.Ref]want{refA: {ActionCreate, ReasonLiveMissing}},
		},
		"live not observed": {
			desired: []*unstructured.Unstructured{a},
			stored:  []inventory.Entry{entry(refA, recA)},
			want:    map[object.Ref]want{refA: {ActionUpdate, ReasonLiveUnknown}},
		},
		"unchanged: skipped": {
			desired: []*unstructured.Unstructured{a},
			stored:  []inventory.Entry{entry(refA, recA)},
			live:    map[object.Ref]string{refA: "5"},
			want:    map[object.Ref]want{refA: {ActionUnchanged, ReasonRecorded}},
		},
		"no longer desired": {
			desired: []*unstructured.Unstructured{a},
			stored:  []inventory.Entry{entry(refA, recA), entry(refB, recA)},
			live:    map[object.Ref]string{refA: "5"},
			want: map[object.Ref]want{refA: {ActionUnchanged, ReasonRecorded},
				refB: {ActionDelete, ReasonNotDesired}},
		},
		"nothing desired": {
			stored: []inventory.Entry{entry(refA, recA)},
			want:   map[object.Ref]want{refA: {ActionDelete, ReasonNotDesired}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := Build(Input{App: "app", Desired: tc.desired, Inventory: tc.stored, Live: tc.live})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Items) != len(tc.want) {
				t.Fatalf("got %d items %+v, want %d", len(p.Items), p.Items, len(tc.want))
			}
			for _, it := range p.Items {
				w, ok := tc.want[it.Ref]
				if !ok {
					t.Errorf("unexpected item %v", it.Ref)
					continue
				}
				if it.Action != w.action || it.Reason != w.reason {
					t.Errorf("%v: %s (%s), want %s (%s)", it.Ref, it.Action, it.Reason, w.action, w.reason)
				}
				if it.Action != ActionDelete && (it.Hash != ha || it.Object == nil) {
					t.Errorf("%v: hash %q object %v", it.Ref, it.Hash, it.Object)
				}
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	noName := configMap("", nil)
	tests := map[string]struct {
		desired []*unstructured.Unstructured
		dup     bool
	}{
		"duplicate": {desired: []*unstructured.Unstructured{configMap("a", nil), configMap("a", map[string]any{"x": "y"})}, dup: true},
		"no name":   {desired: []*unstructured.Unstructured{noName}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Build(Input{App: "app", Desired: tc.desired})
			if err == nil {
				t.Fatal("Build accepted invalid input")
			}
			var dup *DuplicateError
			if errors.As(err, &dup) != tc.dup {
				t.Errorf("err = %v (%T), duplicate = %v", err, err, tc.dup)
			}
		})
	}
}

func TestHash(t *testing.T) {
	a := configMap("a", map[string]any{"x": "1", "y": "2"})
	b := configMap("a", map[string]any{"y": "2", "x": "1"})
	c := configMap("a", map[string]any{"x": "1", "y": "3"})
	if mustHash(t, a) != mustHash(t, b) {
		t.Error("equal objects hash differently")
	}
	if mustHash(t, a) == mustHash(t, c) {
		t.Error("different objects hash equally")
	}
	if len(mustHash(t, a)) != 32 {
		t.Errorf("hash %q: want 32 hex digits", mustHash(t, a))
	}
}

func TestObservable(t *testing.T) {
	a, b := configMap("a", nil), configMap("b", nil)
	stored := []inventory.Entry{
		{Ref: object.RefOf(a), Version: "v1", Record: inventory.Record{Hash: "h", ResourceVersion: "1"}},
		{Ref: object.RefOf(b), Version: "v1"},
		{Ref: object.Ref{Kind: "ConfigMap", Namespace: "ns", Name: "gone"}, Version: "v1",
			Record: inventory.Record{Hash: "h", ResourceVersion: "1"}},
	}
	got := Observable([]*unstructured.Unstructured{a, b}, stored)
	if len(got) != 1 || got[0].Ref != object.RefOf(a) {
		t.Errorf("Observable = %+v, want only a (recorded and desired)", got)
	}
}
