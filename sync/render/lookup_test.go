package render

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/fake"
	k8stesting "k8s.io/client-go/testing"
)

var (
	secretsGVR    = schema.GroupVersionResource{Version: "v1", Resource: "secrets"}
	namespacesGVR = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
)

// fakeReader is a ClusterReader over a fake dynamic client serving Secrets and
// Namespaces; it counts the clients asked for.
type fakeReader struct {
	dyn   *fake.FakeDynamicClient
	calls atomic.Int32
}

func newFakeReader(objs ...runtime.Object) *fakeReader {
	dyn := fake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), map[schema.GroupVersionResource]string{
		secretsGVR: "SecretList", namespacesGVR: "NamespaceList",
	}, objs...)
	return &fakeReader{dyn: dyn}
}

func (f *fakeReader) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	f.calls.Add(1)
	switch apiVersion + " " + kind {
	case "v1 Secret":
		return f.dyn.Resource(secretsGVR), true, nil
	case "v1 Namespace":
		return f.dyn.Resource(namespacesGVR), false, nil
	}
	return nil, false, fmt.Errorf("kind %s of %s is not served by the cluster", kind, apiVersion)
}

func secret(ns, name, password string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data":     map[string]any{"password": base64.StdEncoding.EncodeToString([]byte(password))},
	}}
	return u
}

// lookupChart is a chart whose Secret keeps the password of the live Secret pw in
// .Values.ns (default the release's namespace), or falls back to "generated".
const lookupChart = `{{- $s := lookup "v1" "Secret" (.Values.ns | default .Release.Namespace) "pw" }}
apiVersion: v1
kind: Secret
metadata: {name: pw}
data:
  password: {{ if $s }}{{ index $s.data "password" }}{{ else }}{{ "generated" | b64enc }}{{ end }}
`

// lookupRepo is a repository whose app web (namespace web) renders charts/pw with
// the given helm block lines and secret template.
func lookupRepo(t *testing.T, helmLines, template string) string {
	t.Helper()
	return newRepo(t, map[string]string{
		"apps/web/deploy.yaml":          "",
		"apps/web/app.yaml":             "namespace: web\nhelm:\n  path: charts/pw\n" + helmLines,
		"charts/pw/Chart.yaml":          "apiVersion: v2\nname: pw\nversion: 0.1.0\n",
		"charts/pw/templates/pw.yaml":   template,
		"charts/pw/templates/_none.tpl": "",
	})
}

func password(t *testing.T, res *Result) string {
	t.Helper()
	s := find(res.Objects, "Secret", "pw")
	if s == nil {
		t.Fatalf("no Secret pw in %d objects", len(res.Objects))
	}
	v, _, _ := unstructured.NestedString(s.Object, "data", "password")
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHelmLookup(t *testing.T) {
	const nsList = `{{- $l := lookup "v1" "Secret" "" "" }}
apiVersion: v1
kind: Secret
metadata: {name: pw}
data: {n: {{ len $l.items | toString | b64enc }}}
`
	const clusterScoped = `{{- $n := lookup "v1" "Namespace" "" "web" }}
apiVersion: v1
kind: Secret
metadata: {name: pw}
data: {password: {{ $n.metadata.labels.pw | b64enc }}}
`
	webNS := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": "web", "labels": map[string]any{"pw": "from-namespace"}},
	}}
	tests := map[string]struct {
		helm        string // lines under helm:
		template    string
		noReader    bool
		noNamespace bool   // app.yaml sets no namespace
		want        string // the password rendered
		wantErr     []string
		wantNoCall  bool
	}{
		"reuses the live secret":                      {helm: "  lookup: true\n", template: lookupChart, want: "s3cret"},
		"missing object is empty":                     {helm: "  lookup: true\n  values: {ns: web}\n", template: strings.Replace(lookupChart, `"pw" }}`, `"other" }}`, 1), want: "generated"},
		"lookup off is empty":                         {template: lookupChart, want: "generated", wantNoCall: true},
		"lookup false is empty":                       {helm: "  lookup: false\n", template: lookupChart, want: "generated", wantNoCall: true},
		"no reader as in outpost diff is empty":       {helm: "  lookup: true\n", template: lookupChart, noReader: true, want: "generated"},
		"cluster-scoped object is read":               {helm: "  lookup: true\n", template: clusterScoped, want: "from-namespace"},
		"another namespace is refused":                {helm: "  lookup: true\n  values: {ns: kube-system}\n", template: lookupChart, wantErr: []string{"pw/templates/pw.yaml", "app web: lookup of v1 Secret in namespace kube-system refused", "only in the app's namespace web"}},
		"all namespaces are refused":                  {helm: "  lookup: true\n", template: nsList, wantErr: []string{"pw/templates/pw.yaml", "app web: lookup of v1 Secret in all namespaces refused"}},
		"unknown kind fails naming it":                {helm: "  lookup: true\n", template: `{{ lookup "example.com/v1" "Gadget" .Release.Namespace "g" }}`, wantErr: []string{"pw/templates/pw.yaml", "app web: lookup of example.com/v1 Gadget: kind Gadget of example.com/v1 is not served"}},
		"app without namespace reads cluster-scoped":  {noNamespace: true, helm: "  lookup: true\n", template: strings.Replace(clusterScoped, "{name: pw}", "{name: pw, namespace: web}", 1), want: "from-namespace"},
		"app without namespace is refused namespaced": {noNamespace: true, helm: "  lookup: true\n  values: {ns: web}\n", template: lookupChart, wantErr: []string{"app web: lookup of v1 Secret in namespace web refused: the app has no namespace"}},
		"namespace list of the app's is read":         {helm: "  lookup: true\n", template: strings.Replace(nsList, `"Secret" ""`, `"Secret" .Release.Namespace`, 1)},
		"the reader's error fails the render":         {helm: "  lookup: true\n", template: `{{ lookup "v1" "Secret" .Release.Namespace "boom" }}`, wantErr: []string{"pw/templates/pw.yaml", "app web: lookup of v1 Secret in namespace web: injected failure"}},
		"a template's change to an answer is its own": {helm: "  lookup: true\n", template: lookupChart + `{{ $_ := set (lookup "v1" "Secret" .Release.Namespace "pw").data "password" ("changed" | b64enc) }}`, want: "s3cret"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fr := newFakeReader(secret("web", "pw", "s3cret"), secret("kube-system", "pw", "theirs"), webNS)
			fr.dyn.PrependReactor("get", "secrets", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.(k8stesting.GetAction).GetName() == "boom" {
					return true, nil, errors.New("injected failure")
				}
				return false, nil, nil
			})
			opts := Options{Lookup: fr}
			if tc.noReader {
				opts.Lookup = nil
			}
			root := lookupRepo(t, tc.helm, tc.template)
			if tc.noNamespace {
				writeFile(t, filepath.Join(root, "apps/web/app.yaml"), "helm:\n  path: charts/pw\n"+tc.helm)
			}
			res, err := renderApp(t, root, "web", opts)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatal("rendered, want an error")
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("err = %v\nwant it to contain %q", err, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" {
				if got := password(t, res); got != tc.want {
					t.Errorf("password = %q, want %q", got, tc.want)
				}
			}
			if calls := fr.calls.Load(); tc.wantNoCall && calls != 0 {
				t.Errorf("the reader was asked %d times, want never", calls)
			}
		})
	}
}

// TestHelmLookupMemoized: the two renders of a chart see the same cluster, even when
// the object changes between them, and the cluster is asked once per question.
func TestHelmLookupMemoized(t *testing.T) {
	fr := newFakeReader(secret("web", "pw", "unused"))
	var gets atomic.Int32
	fr.dyn.PrependReactor("get", "secrets", func(k8stesting.Action) (bool, runtime.Object, error) {
		n := gets.Add(1) // a different password on every read
		return true, secret("web", "pw", fmt.Sprintf("changed-%d", n)), nil
	})
	root := lookupRepo(t, "  lookup: true\n", lookupChart+"---\n"+strings.Replace(lookupChart, "{name: pw}", "{name: pw2}", 1))
	res, err := renderApp(t, root, "web", Options{Lookup: fr})
	if err != nil {
		t.Fatalf("render: %v (the two renders saw different answers?)", err)
	}
	if got := password(t, res); got != "changed-1" {
		t.Errorf("password = %q, want changed-1 (the first answer)", got)
	}
	if n := gets.Load(); n != 1 {
		t.Errorf("the cluster was read %d times for one question asked 4 times (2 templates, 2 renders), want 1", n)
	}
	// A new render asks again.
	res, err = renderApp(t, root, "web", Options{Lookup: fr})
	if err != nil {
		t.Fatal(err)
	}
	if got := password(t, res); got != "changed-2" {
		t.Errorf("next render's password = %q, want changed-2", got)
	}
}

// TestLookupClientIsReadOnly: every write method of a lookup client fails, whatever
// the namespace, and nothing reaches the cluster.
func TestLookupClientIsReadOnly(t *testing.T) {
	fr := newFakeReader(secret("web", "pw", "s3cret"))
	p := newLookupProvider(context.Background(), fr, "web", "web")
	c, namespaced, err := p.GetClientFor("v1", "Secret")
	if err != nil || !namespaced {
		t.Fatalf("GetClientFor = %v, %v", namespaced, err)
	}
	ri := c.Namespace("web")
	ctx := context.Background()
	obj := secret("web", "pw", "new")
	writes := map[string]func() error{
		"create":            func() error { _, err := ri.Create(ctx, obj, metav1.CreateOptions{}); return err },
		"update":            func() error { _, err := ri.Update(ctx, obj, metav1.UpdateOptions{}); return err },
		"update status":     func() error { _, err := ri.UpdateStatus(ctx, obj, metav1.UpdateOptions{}); return err },
		"delete":            func() error { return ri.Delete(ctx, "pw", metav1.DeleteOptions{}) },
		"delete collection": func() error { return ri.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}) },
		"patch": func() error {
			_, err := ri.Patch(ctx, "pw", "application/merge-patch+json", []byte(`{}`), metav1.PatchOptions{})
			return err
		},
		"apply":        func() error { _, err := ri.Apply(ctx, "pw", obj, metav1.ApplyOptions{}); return err },
		"apply status": func() error { _, err := ri.ApplyStatus(ctx, "pw", obj, metav1.ApplyOptions{}); return err },
		"cluster-wide create": func() error {
			_, err := c.Create(ctx, obj, metav1.CreateOptions{})
			return err
		},
	}
	for name, write := range writes {
		t.Run(name, func(t *testing.T) {
			err := write()
			if !errors.Is(err, errLookupReadOnly) || !strings.Contains(err.Error(), "app web") || !strings.Contains(err.Error(), "v1 Secret") {
				t.Errorf("err = %v, want a read-only refusal naming the app and kind", err)
			}
		})
	}
	if _, err := ri.Watch(ctx, metav1.ListOptions{}); err == nil {
		t.Error("watch served, want it refused")
	}
	if _, err := ri.Get(ctx, "pw", metav1.GetOptions{}, "status"); err == nil {
		t.Error("a subresource served, want it refused")
	}
	for _, a := range fr.dyn.Actions() {
		if a.GetVerb() != "get" && a.GetVerb() != "list" {
			t.Errorf("the cluster saw a %s", a.GetVerb())
		}
	}
	got, err := ri.Get(ctx, "pw", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(got.Object, "data", "password"); v != base64.StdEncoding.EncodeToString([]byte("s3cret")) {
		t.Errorf("the Secret changed: %v", got.Object)
	}
}

func TestHelmReleaseInstallOrUpgrade(t *testing.T) {
	const tpl = `apiVersion: v1
kind: ConfigMap
metadata: {name: release}
data: {install: {{ .Release.IsInstall | quote }}, upgrade: {{ .Release.IsUpgrade | quote }}}
`
	tests := map[string]struct {
		installed   func(string) bool
		wantInstall string
	}{
		"no inventories as in outpost diff is an install": {wantInstall: "true"},
		"app without an inventory is an install":          {installed: func(app string) bool { return app == "other" }, wantInstall: "true"},
		"app with an inventory is an upgrade":             {installed: func(app string) bool { return app == "web" }, wantInstall: "false"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			res, err := renderApp(t, lookupRepo(t, "", tpl), "web", Options{Installed: tc.installed})
			if err != nil {
				t.Fatal(err)
			}
			cm := find(res.Objects, "ConfigMap", "release")
			install, _, _ := unstructured.NestedString(cm.Object, "data", "install")
			upgrade, _, _ := unstructured.NestedString(cm.Object, "data", "upgrade")
			if install != tc.wantInstall || upgrade == install {
				t.Errorf("IsInstall %s, IsUpgrade %s; want IsInstall %s and IsUpgrade its opposite", install, upgrade, tc.wantInstall)
			}
		})
	}
}
