package object

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func TestOwnerOwns(t *testing.T) {
	o := DefaultOwner()
	tests := map[string]struct {
		labels map[string]string
		want   bool
	}{
		"owned":          {o.Labels("web"), true},
		"other app":      {o.Labels("db"), false},
		"no labels":      {nil, false},
		"app label only": {map[string]string{LabelApp: "web"}, false},
		"other manager":  {map[string]string{LabelApp: "web", LabelManagedBy: "helm"}, false},
		"other owner":    {Owner{ManagedBy: "outpost-canary"}.WithDefaults().Labels("web"), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := o.Owns(tc.labels, "web"); got != tc.want {
				t.Errorf("Owns = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOwnerDefaultsAndLabels(t *testing.T) {
	o := DefaultOwner()
	if o.FieldManager != "outpost" || o.ManagedBy != "outpost" {
		t.Fatalf("DefaultOwner = %+v", o)
	}
	if got := (Owner{FieldManager: "canary"}).WithDefaults(); got.FieldManager != "canary" || got.ManagedBy != "outpost" {
		t.Fatalf("WithDefaults kept %+v", got)
	}
	if got := o.Selector(); got != "app.kubernetes.io/managed-by=outpost" {
		t.Errorf("Selector = %q", got)
	}
	u := &unstructured.Unstructured{}
	u.SetLabels(map[string]string{"tier": "web", LabelApp: "forged", LabelManagedBy: "helm"})
	o.SetLabels(u, "shop")
	want := map[string]string{"tier": "web", LabelApp: "shop", LabelManagedBy: "outpost"}
	if got := u.GetLabels(); len(got) != len(want) || got["tier"] != "web" || !o.Owns(got, "shop") || o.AppOf(got) != "shop" {
		t.Errorf("labels after SetLabels = %v, want %v", got, want)
	}
}
