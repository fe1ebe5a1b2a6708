package plan

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	fieldpkg "github.com/outpost-gitops/outpost/sync/field"
)

func obj(apiVersion, kind string, fields map[string]any) *unstructured.Unstructured {
	o := map[string]any{"apiVersion": apiVersion, "kind": kind,
		"metadata": map[string]any{"name": "x", "namespace": "ns", "resourceVersion": "1", "uid": "u"}}
	for k, v := range fields {
		if k == "metadata" {
			for mk, mv := range v.(map[string]any) {
				o["metadata"].(map[string]any)[mk] = mv
			}
			continue
		}
		o[k] = v
	}
	return &unstructured.Unstructured{Object: o}
}

func TestCompare(t *testing.T) {
	key := []byte("k")
	deploy := func(replicas any, image string, extra ...map[string]any) *unstructured.Unstructured {
		containers := []any{map[string]any{"name": "web", "image": image}}
		for _, e := range extra {
			containers = append(containers, e)
		}
		return obj("apps/v1", "Deployment", map[string]any{
			"spec": map[string]any{"replicas": replicas,
				"template": map[string]any{"spec": map[string]any{"containers": containers}}},
			"status": map[string]any{"replicas": int64(1)},
		})
	}
	tests := map[string]struct {
		live, merged *unstructured.Unstructured
		want         []FieldChange
	}{
		"identical":                        {deploy(int64(1), "a"), deploy(int64(1), "a"), nil},
		"int and float of the same number": {deploy(int64(2), "a"), deploy(float64(2), "a"), nil},
		"changed scalar": {deploy(int64(1), "a"), deploy(int64(3), "a"),
			[]FieldChange{{Path: "spec.replicas", Op: OpChanged, Old: int64(1), New: int64(3)}}},
		"list item matched by name": {deploy(int64(1), "a"), deploy(int64(1), "b"),
			[]FieldChange{{Path: "spec.template.spec.containers[name=web].image", Op: OpChanged, Old: "a", New: "b"}}},
		"list item added": {deploy(int64(1), "a"), deploy(int64(1), "a", map[string]any{"name": "side", "image": "s"}),
			[]FieldChange{{Path: "spec.template.spec.containers[name=side]", Op: OpAdded,
				New: map[string]any{"name": "side", "image": "s"}}}},
		"status and server metadata ignored": {
			deploy(int64(1), "a"),
			func() *unstructured.Unstructured {
				d := deploy(int64(1), "a")
				d.SetResourceVersion("99")
				d.SetGeneration(4)
				_ = unstructured.SetNestedField(d.Object, int64(3), "status", "replicas")
				return d
			}(), nil},
		"label with dots removed": {
			obj("v1", "ConfigMap", map[string]any{"metadata": map[string]any{"labels": map[string]any{"app.kubernetes.io/name": "w"}}}),
			obj("v1", "ConfigMap", nil),
			[]FieldChange{{Path: `metadata.labels["app.kubernetes.io/name"]`, Op: OpRemoved, Old: "w"}}},
		"unnamed list by index": {
			obj("v1", "ConfigMap", map[string]any{"x": []any{"a", "b"}}),
			obj("v1", "ConfigMap", map[string]any{"x": []any{"a"}}),
			[]FieldChange{{Path: "x[1]", Op: OpRemoved, Old: "b"}}},
		"secret values masked": {
			obj("v1", "Secret", map[string]any{"data": map[string]any{"password": "b2xk", "same": "eA=="}}),
			obj("v1", "Secret", map[string]any{"data": map[string]any{"password": "bmV3", "same": "eA=="}}),
			[]FieldChange{{Path: "data.password", Op: OpChanged, Old: Mask(key, "b2xk"), New: Mask(key, "bmV3")}}},
		"secret key added masked": {
			obj("v1", "Secret", nil),
			obj("v1", "Secret", map[string]any{"stringData": map[string]any{"token": "clear"}}),
			[]FieldChange{{Path: "stringData", Op: OpAdded, New: map[string]any{"token": Mask(key, "clear")}}}},
		"not a core secret: not masked": {
			obj("example.com/v1", "Secret", map[string]any{"data": map[string]any{"k": "old"}}),
			obj("example.com/v1", "Secret", map[string]any{"data": map[string]any{"k": "new"}}),
			[]FieldChange{{Path: "data.k", Op: OpChanged, Old: "old", New: "new"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Compare(tc.live, tc.merged, key)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Compare =\n%#v\nwant\n%#v", got, tc.want)
			}
		})
	}
}

func TestCompareNeverLeaksSecretValues(t *testing.T) {
	live := obj("v1", "Secret", map[string]any{
		"data": map[string]any{"password": "aHVudGVyMg=="},
		"metadata": map[string]any{"annotations": map[string]any{
			fieldpkg.LastAppliedAnnotation: `{"stringData":{"password":"hunter2"}}`}},
	})
	merged := obj("v1", "Secret", map[string]any{"data": map[string]any{"password": "c3dvcmRmaXNo"}})
	changes := Compare(live, merged, []byte("key"))
	out, err := json.Marshal(changes)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "aHVudGVyMg==", "c3dvcmRmaXNo", "swordfish"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("diff %s leaks %q", out, secret)
		}
	}
	if len(changes) != 2 {
		t.Errorf("want a masked data change and a masked annotation removal, got %s", out)
	}
}

func TestMask(t *testing.T) {
	a, b := Mask([]byte("k1"), "v"), Mask([]byte("k1"), "v")
	if a != b || !strings.HasPrefix(a, MaskPrefix) || len(a) != len(MaskPrefix)+8 {
		t.Errorf("Mask = %q, %q", a, b)
	}
	if Mask([]byte("k1"), "w") == a || Mask([]byte("k2"), "v") == a {
		t.Error("mask does not depend on value and key")
	}
}

func TestFieldChangeString(t *testing.T) {
	tests := map[string]struct {
		c    FieldChange
		want string
	}{
		"changed": {FieldChange{Path: "spec.replicas", Op: OpChanged, Old: 1, New: 3}, "spec.replicas: 1 → 3"},
		"added":   {FieldChange{Path: "data.k", Op: OpAdded, New: "v"}, `data.k: + "v"`},
		"removed": {FieldChange{Path: "data.k", Op: OpRemoved, Old: "v"}, `data.k: - "v"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.c.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestIsImmutable(t *testing.T) {
	gk := schema.GroupKind{Group: "apps", Kind: "Deployment"}
	invalid := func(msg string) error {
		return apierrors.NewInvalid(gk, "x", field.ErrorList{field.Invalid(field.NewPath("spec", "selector"), "v", msg)})
	}
	tests := map[string]struct {
		err  error
		want bool
	}{
		"nil":                 {nil, false},
		"immutable field":     {invalid("field is immutable"), true},
		"may not change":      {invalid("may not change once set"), true},
		"plain invalid value": {invalid("must be no more than 63 characters"), false},
		"conflict":            {apierrors.NewConflict(schema.GroupResource{Resource: "x"}, "x", nil), false},
		"not found":           {apierrors.NewNotFound(schema.GroupResource{Resource: "x"}, "x"), false},
		"webhook denial":      {apierrors.NewForbidden(schema.GroupResource{Resource: "x"}, "x", errImmutable{}), true},
		"not from apiserver":  {errImmutable{}, false},
		"statefulset forbidden": {apierrors.NewInvalid(gk, "x", field.ErrorList{field.Forbidden(field.NewPath("spec"),
			"updates to statefulset spec for fields other than 'replicas' are forbidden")}), true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := IsImmutable(tc.err); got != tc.want {
				t.Errorf("IsImmutable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

type errImmutable struct{}

func (errImmutable) Error() string { return "spec.foo is immutable" }
