package plan

import (
	"encoding/json"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/sync/object"
)

var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "plan"}, func(c *testenv.Cluster) { env = c })
}

func newDiffer(t *testing.T) (*Differ, client.Client) {
	t.Helper()
	c, err := client.New(env.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := NewDiffer(c, DifferOptions{MaskKey: []byte("test")})
	if err != nil {
		t.Fatal(err)
	}
	return d, c
}

func fromYAML(t *testing.T, ns, doc string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(doc), &u.Object); err != nil {
		t.Fatal(err)
	}
	if ns != "" {
		u.SetNamespace(ns)
	}
	return u
}

func apply(t *testing.T, c client.Client, u *unstructured.Unstructured) {
	t.Helper()
	err := c.Apply(t.Context(), client.ApplyConfigurationFromUnstructured(u.DeepCopy()),
		client.FieldOwner(object.DefaultFieldManager), client.ForceOwnership)
	if err != nil {
		t.Fatalf("apply %s: %v", object.RefOf(u), err)
	}
}

const deployment = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}]
`

const service = `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`

func TestDiffDefaultedFieldsAreNotChanges(t *testing.T) {
	d, c := newDiffer(t)
	ns := env.CreateNamespace(t)
	for _, doc := range []string{deployment, service} {
		u := fromYAML(t, ns, doc)
		od, err := d.Diff(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		if od.Action != ActionCreate || od.Live != nil {
			t.Fatalf("%s before apply: %s, want create", object.RefOf(u), od.Action)
		}
		apply(t, c, u)
		od, err = d.Diff(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		if od.Action != ActionUnchanged || len(od.Changes) != 0 {
			t.Errorf("%s after apply: %s %v, want unchanged (defaults are not changes)",
				object.RefOf(u), od.Action, od.Changes)
		}
	}

	changed := fromYAML(t, ns, strings.Replace(deployment, "replicas: 1", "replicas: 3", 1))
	od, err := d.Diff(t.Context(), changed)
	if err != nil {
		t.Fatal(err)
	}
	want := FieldChange{Path: "spec.replicas", Op: OpChanged, Old: int64(1), New: int64(3)}
	if od.Action != ActionUpdate || len(od.Changes) != 1 || od.Changes[0].Path != want.Path ||
		od.Changes[0].Old != want.Old || od.Changes[0].New != want.New {
		t.Errorf("replicas 1 → 3: %s %+v, want update %+v", od.Action, od.Changes, want)
	}
}

const secret = `
apiVersion: v1
kind: Secret
metadata: {name: creds}
stringData: {password: hunter2, user: admin}
`

func TestRefineMasksSecretsAndSettlesActions(t *testing.T) {
	d, c := newDiffer(t)
	ns := env.CreateNamespace(t)
	apply(t, c, fromYAML(t, ns, secret))
	dep := fromYAML(t, ns, deployment)
	apply(t, c, dep)

	changedSecret := fromYAML(t, ns, strings.Replace(secret, "hunter2", "swordfish", 1))
	badSelector := fromYAML(t, ns, strings.ReplaceAll(deployment, "app: web", "app: api"))
	invalid := fromYAML(t, ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: "Not_Valid"}}`)
	crd := fromYAML(t, "", widgetCRD)
	widget := fromYAML(t, ns, `{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, spec: {size: 1}}`)
	fresh := fromYAML(t, ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: fresh}, data: {k: v}}`)

	p, err := Build(Input{App: "app", Desired: []*unstructured.Unstructured{
		changedSecret, badSelector, invalid, crd, widget, fresh}})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Refine(t.Context(), p); err == nil {
		t.Error("Refine returned no error for an invalid object and an immutable change")
	}
	items := map[string]Item{}
	for _, it := range p.Items {
		items[it.Name] = it
	}

	s := items["creds"]
	if s.Action != ActionUpdate || s.Reason != ReasonDryRun || len(s.Diff) != 1 || s.Diff[0].Path != "data.password" {
		t.Fatalf("secret: %s %v, want update of data.password", s.Action, s.Diff)
	}
	out, _ := json.Marshal(p)
	for _, leak := range []string{"hunter2", "swordfish", "aHVudGVyMg", "c3dvcmRmaXNo"} {
		if strings.Contains(string(out), leak) {
			t.Errorf("plan JSON leaks %q: %s", leak, out)
		}
	}
	if old, _ := s.Diff[0].Old.(string); !strings.HasPrefix(old, MaskPrefix) || s.Diff[0].Old == s.Diff[0].New {
		t.Errorf("secret diff %v: want two different masks", s.Diff[0])
	}

	if it := items["web"]; !it.Immutable || it.Error == "" {
		t.Errorf("selector change: immutable=%v error=%q, want immutable", it.Immutable, it.Error)
	}
	if it := items["Not_Valid"]; it.Immutable || it.Error == "" {
		t.Errorf("invalid name: immutable=%v error=%q, want a plain error", it.Immutable, it.Error)
	}
	if it := items["w"]; it.Action != ActionCreate || it.Error != "" {
		t.Errorf("custom resource of a CRD in the plan: %s %q, want create", it.Action, it.Error)
	}
	if it := items["fresh"]; it.Action != ActionCreate || it.Error != "" {
		t.Errorf("new ConfigMap: %s %q, want create", it.Action, it.Error)
	}
	if c := p.Counts(); c.Failed != 2 || c.Update != 1 || c.Create != 5 {
		t.Errorf("counts %+v", c)
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
