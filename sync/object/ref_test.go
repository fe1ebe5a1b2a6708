package object

import (
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func ref(kind, ns, name string) Ref { return Ref{Kind: kind, Namespace: ns, Name: name} }

func TestRefString(t *testing.T) {
	tests := map[string]struct {
		ref  Ref
		want string
	}{
		"core namespaced":  {ref("ConfigMap", "web", "cfg"), "ConfigMap/web/cfg"},
		"grouped":          {Ref{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "api"}, "Deployment.apps/web/api"},
		"cluster-scoped":   {ref("Namespace", "", "web"), "Namespace/web"},
		"no kind, no name": {ref("", "web", ""), "<none>/web/<none>"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.ref.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRefOf(t *testing.T) {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("apps/v1beta2")
	u.SetKind("Deployment")
	u.SetNamespace("web")
	u.SetName("api")
	want := Ref{Group: "apps", Kind: "Deployment", Namespace: "web", Name: "api"}
	if got := RefOf(u); got != want {
		t.Errorf("RefOf = %+v, want %+v", got, want)
	}
	u.SetAPIVersion("apps/v1")
	if got := RefOf(u); got != want {
		t.Errorf("RefOf at another version = %+v, want the same Ref %+v", got, want)
	}
}

func TestIsSecret(t *testing.T) {
	tests := map[string]struct {
		ref  Ref
		want bool
	}{
		"core Secret":    {ref("Secret", "web", "s"), true},
		"custom Secret":  {Ref{Group: "example.com", Kind: "Secret", Name: "s"}, false},
		"core ConfigMap": {ref("ConfigMap", "web", "s"), false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := tc.ref.IsSecret(); got != tc.want {
				t.Errorf("IsSecret() = %v, want %v", got, tc.want)
			}
		})
	}
}
