package apply

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/object"
)

var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "apply"}, func(c *testenv.Cluster) { env = c })
}

// harness is a Syncer whose requests are counted, plus an uncounted client.
type harness struct {
	s      *Syncer
	req    *testenv.Requests
	c      client.Client // uncounted, for assertions
	ns     string
	app    string
	config Config
}

func newHarness(t testing.TB, mutate ...func(*Config)) *harness {
	t.Helper()
	h := &harness{req: &testenv.Requests{}, ns: env.CreateNamespace(t)}
	h.app = h.ns
	cfg := env.RESTConfig()
	cfg.Wrap(h.req.Wrap)
	counted, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if h.c, err = client.New(env.RESTConfig(), client.Options{}); err != nil {
		t.Fatal(err)
	}
	h.config = Config{
		Client: counted,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	for _, m := range mutate {
		m(&h.config)
	}
	if h.s, err = New(h.config); err != nil {
		t.Fatal(err)
	}
	return h
}

// owned returns copies of objs with app's ownership labels, as render gives them.
func owned(app string, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
		object.DefaultOwner().SetLabels(out[i], app)
	}
	return out
}

// sync runs SyncApp and fails the test on error.
func (h *harness) sync(t testing.TB, desired []*unstructured.Unstructured, opts Options) *Result {
	t.Helper()
	res, err := h.s.SyncApp(t.Context(), h.app, owned(h.app, desired), opts)
	if err != nil {
		t.Fatalf("SyncApp: %v", err)
	}
	return res
}

func (h *harness) inventory(t *testing.T) []inventory.Entry {
	t.Helper()
	inv, err := inventory.NewStore(h.c, inventory.StoreOptions{}).Load(t.Context(), h.app)
	if err != nil {
		t.Fatal(err)
	}
	return inv.Entries
}

// live returns the object named like u, or nil when it does not exist.
func (h *harness) live(t *testing.T, u *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	got := &unstructured.Unstructured{}
	got.SetGroupVersionKind(u.GroupVersionKind())
	if err := h.c.Get(t.Context(), client.ObjectKeyFromObject(u), got); err != nil {
		if client.IgnoreNotFound(err) == nil {
			return nil
		}
		t.Fatal(err)
	}
	return got
}

func fromYAML(t testing.TB, ns, doc string) *unstructured.Unstructured {
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

// objects returns n objects of mixed kinds in ns: ConfigMaps, Secrets, Services
// and Deployments.
func objects(t testing.TB, ns string, n int) []*unstructured.Unstructured {
	t.Helper()
	out := make([]*unstructured.Unstructured, 0, n)
	for i := range n {
		var doc string
		switch i % 4 {
		case 0:
			doc = fmt.Sprintf(`{apiVersion: v1, kind: ConfigMap, metadata: {name: cm-%d}, data: {index: "%d"}}`, i, i)
		case 1:
			doc = fmt.Sprintf(`{apiVersion: v1, kind: Secret, metadata: {name: secret-%d}, stringData: {password: "pw-%d"}}`, i, i)
		case 2:
			doc = fmt.Sprintf(`{apiVersion: v1, kind: Service, metadata: {name: svc-%d}, spec: {selector: {app: a%d}, ports: [{port: 80}]}}`, i, i)
		case 3:
			doc = deploymentYAML(fmt.Sprintf("deploy-%d", i), "web", "nginx:1.27")
		}
		out = append(out, fromYAML(t, ns, doc))
	}
	return out
}

func deploymentYAML(name, selector, image string) string {
	return fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: %s}
spec:
  replicas: 1
  selector: {matchLabels: {app: %s}}
  template:
    metadata: {labels: {app: %s}}
    spec:
      containers: [{name: web, image: "%s"}]
`, name, selector, selector, image)
}

// byName returns the object named name.
func byName(objs []*unstructured.Unstructured, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	return nil
}

// without returns objs minus the object named name.
func without(objs []*unstructured.Unstructured, name string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetName() != name {
			out = append(out, o)
		}
	}
	return out
}

func joined(lines []string) string { return strings.Join(lines, "\n  ") }
