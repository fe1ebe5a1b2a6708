package driftwatch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/sync/object"
)

var env *testenv.Cluster

func TestMain(m *testing.M) {
	testenv.RunMain(m, testenv.Options{Name: "driftwatch"}, func(c *testenv.Cluster) { env = c })
}

// clients are the test's clients of the cluster, with full rights: dynamic, typed, and
// a discovery RESTMapper.
func clients(t *testing.T) (dynamic.Interface, kubernetes.Interface, meta.ResettableRESTMapper) {
	t.Helper()
	cfg := env.RESTConfig()
	return dynamic.NewForConfigOrDie(cfg), kubernetes.NewForConfigOrDie(cfg), mapperFor(cfg)
}

// mapperFor is a discovery RESTMapper of cfg's cluster.
func mapperFor(cfg *rest.Config) meta.ResettableRESTMapper {
	return restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(discovery.NewDiscoveryClientForConfigOrDie(cfg)))
}

var deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}

func deployment(t *testing.T, ns string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: `+ns+`
  labels: {app.kubernetes.io/managed-by: outpost, outpost.dev/app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
`), &u.Object); err != nil {
		t.Fatal(err)
	}
	return u
}

// applyAsOutpost server-side applies obj with Outpost's field manager.
func applyAsOutpost(t *testing.T, dyn dynamic.Interface, obj *unstructured.Unstructured) {
	t.Helper()
	data, err := json.Marshal(obj.Object)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dyn.Resource(deployments).Namespace(obj.GetNamespace()).Patch(t.Context(), obj.GetName(), types.ApplyPatchType, data,
		metav1.PatchOptions{FieldManager: "outpost", Force: new(true)}); err != nil {
		t.Fatal(err)
	}
}

func TestDriftEventsFromAnotherManager(t *testing.T) {
	ns := env.CreateNamespace(t)
	dyn, cs, mapper := clients(t)

	desired := deployment(t, ns)
	applyAsOutpost(t, dyn, desired)

	events := make(chan Event, 16)
	w := New(Config{Client: dyn, Mapper: mapper, OnEvent: func(e Event) { events <- e }})
	w.Start(t.Context())
	if err := w.SetDesired(t.Context(), "web", []*unstructured.Unstructured{desired}, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := w.Get(object.Ref{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}); !ok || err != nil {
		t.Fatalf("Get from watch cache: ok=%v err=%v", ok, err)
	}
	select {
	case e := <-events:
		t.Fatalf("event right after apply, want none: %+v", e.Report)
	case <-time.After(300 * time.Millisecond):
	}

	// kubectl scale: the scale subresource, manager kubectl, no time in managedFields.
	start := time.Now()
	if _, err := cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), "web",
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}},
		metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	e := waitEvent(t, events)
	t.Logf("drift event %s after kubectl scale", time.Since(start).Round(time.Millisecond))
	if e.App != "web" || len(e.Report.Fields) != 1 {
		t.Fatalf("event = %+v, want one drifted field of app web", e.Report)
	}
	f := e.Report.Fields[0]
	if f.Path != "spec.replicas" || f.Manager != "kubectl" || f.Subresource != "scale" || toInt(f.Desired) != 2 || toInt(f.Live) != 5 {
		t.Errorf("field = %+v, want spec.replicas 2 -> 5 by kubectl via scale", f)
	}

	if cur := w.Drift("web"); len(cur) != 1 || cur[0].Fields[0].Path != "spec.replicas" || w.DriftedObjects() != 1 {
		t.Errorf("Drift(web) = %+v (%d drifted objects), want the replicas drift", cur, w.DriftedObjects())
	}

	// Status churn of the same drifted object emits nothing new.
	select {
	case e := <-events:
		t.Fatalf("duplicate event: %+v", e.Report)
	case <-time.After(300 * time.Millisecond):
	}

	// Outpost re-applies (drift: correct): the drift clears.
	applyAsOutpost(t, dyn, desired)
	if e := waitEvent(t, events); e.Report.Drifted() {
		t.Errorf("after re-apply: %+v, want drift cleared", e.Report)
	}
	if cur := w.Drift("web"); len(cur) != 0 || w.DriftedObjects() != 0 {
		t.Errorf("Drift(web) after re-apply = %+v (%d drifted objects), want none", cur, w.DriftedObjects())
	}

	// Deleted out of band.
	if err := dyn.Resource(deployments).Namespace(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent(t, events); !e.Report.Deleted {
		t.Errorf("after delete: %+v, want Deleted", e.Report)
	}
}

func TestObjectsOfNoAppAreIgnored(t *testing.T) {
	ns := env.CreateNamespace(t)
	dyn, _, mapper := clients(t)
	events := make(chan Event, 16)
	w := New(Config{Client: dyn, Mapper: mapper, OnEvent: func(e Event) { events <- e }})
	w.Start(t.Context())
	desired := deployment(t, ns)
	applyAsOutpost(t, dyn, desired)
	if err := w.SetDesired(t.Context(), "web", []*unstructured.Unstructured{desired}, nil); err != nil {
		t.Fatal(err)
	}
	// The app is removed (its objects pruned by Outpost): a delete is no drift.
	if err := w.SetDesired(t.Context(), "web", nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := dyn.Resource(deployments).Namespace(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-events:
		t.Fatalf("event for an object no app wants: %+v", e.Report)
	case <-time.After(500 * time.Millisecond):
	}
}

func waitEvent(t *testing.T, events <-chan Event) Event {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no drift event within 10s")
		return Event{}
	}
}

func toInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case float64:
		return int64(n)
	case int:
		return int64(n)
	}
	return -1
}

// TestNamespacedWatchUnderNamespacedRBAC runs the watch with a ServiceAccount token
// whose Role covers one namespace only: a cluster-wide watch would be forbidden.
func TestNamespacedWatchUnderNamespacedRBAC(t *testing.T) {
	ns := env.CreateNamespace(t)
	admin := env.RESTConfig()
	cs := kubernetes.NewForConfigOrDie(admin)
	role := &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: []string{"get", "list", "watch", "create", "patch"}}},
	}
	if _, err := cs.RbacV1().Roles(ns).Create(t.Context(), role, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	binding := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: ns},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "agent"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "agent", Namespace: ns}},
	}
	if _, err := cs.RbacV1().RoleBindings(ns).Create(t.Context(), binding, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	token, err := env.ServiceAccountToken(t.Context(), ns, "agent")
	if err != nil {
		t.Fatal(err)
	}
	cfg := env.TokenConfig(token)
	dyn := dynamic.NewForConfigOrDie(cfg)
	desired := deployment(t, ns)
	applyAsOutpost(t, dyn, desired)
	mapper := mapperFor(cfg)
	events := make(chan Event, 16)
	w := New(Config{Client: dyn, Mapper: mapper, Namespaced: true, OnEvent: func(e Event) { events <- e }})
	w.Start(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := w.SetDesired(ctx, "web", []*unstructured.Unstructured{desired}, nil); err != nil {
		t.Fatalf("namespaced watch under a namespaced Role: %v", err)
	}
	if _, err := cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), "web",
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 4}},
		metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent(t, events); len(e.Report.Fields) != 1 || e.Report.Fields[0].Manager != "kubectl" {
		t.Errorf("event = %+v, want replicas drift by kubectl", e.Report)
	}
}

// A write with Outpost's own field manager that Outpost's apply did not record (the
// object's resourceVersion is not the recorded one) is a stale write — a fenced-out
// leader's — reported in Event.Stale, not as drift; the same values at the recorded
// resourceVersion are not, and another manager's change stays drift.
func TestStaleWriteByOutpostsOwnFieldManager(t *testing.T) {
	ns := env.CreateNamespace(t)
	dyn, cs, mapper := clients(t)
	ref := object.Ref{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}
	image := func(obj *unstructured.Unstructured, img string) *unstructured.Unstructured {
		out := obj.DeepCopy()
		containers, _, _ := unstructured.NestedSlice(out.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = img
		if err := unstructured.SetNestedSlice(out.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
		return out
	}
	liveVersion := func() string {
		live, err := dyn.Resource(deployments).Namespace(ns).Get(t.Context(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return live.GetResourceVersion()
	}
	quiet := func(what string, events <-chan Event) {
		t.Helper()
		select {
		case e := <-events:
			t.Fatalf("%s: event %+v stale %+v, want none", what, e.Report, e.Stale)
		case <-time.After(300 * time.Millisecond):
		}
	}

	desired := deployment(t, ns) // image nginx:1.27
	applyAsOutpost(t, dyn, desired)
	events := make(chan Event, 16)
	w := New(Config{Client: dyn, Mapper: mapper, OnEvent: func(e Event) { events <- e }})
	w.Start(t.Context())
	if err := w.SetDesired(t.Context(), "web", []*unstructured.Unstructured{desired}, map[object.Ref]string{ref: liveVersion()}); err != nil {
		t.Fatal(err)
	}
	quiet("right after the apply", events)

	// The old leader resumes and sends the write of an older version it had prepared.
	applyAsOutpost(t, dyn, image(desired, "nginx:1.26"))
	e := waitEvent(t, events)
	if e.Report.Drifted() || len(e.Stale) != 1 || e.Stale[0].Path != "spec.template.spec.containers[name=web].image" ||
		e.Stale[0].Manager != "outpost" || e.Stale[0].Live != "nginx:1.26" {
		t.Fatalf("after a write by Outpost's field manager that no apply recorded: report %+v stale %+v, want the image as stale and no drift", e.Report, e.Stale)
	}
	if got := w.Stale("web"); len(got) != 1 || got[0] != ref {
		t.Errorf("Stale(web) = %v, want [%s]", got, ref)
	}
	if w.DriftedObjects() != 0 {
		t.Errorf("a stale write counted as drift: %d drifted objects", w.DriftedObjects())
	}

	// The new leader applies again and records the result: no longer stale.
	applyAsOutpost(t, dyn, desired)
	if err := w.SetDesired(t.Context(), "web", []*unstructured.Unstructured{desired}, map[object.Ref]string{ref: liveVersion()}); err != nil {
		t.Fatal(err)
	}
	if got := w.Stale("web"); len(got) != 0 {
		t.Errorf("Stale(web) after the re-apply = %v, want none", got)
	}

	// Outpost's value differs from the desired one but the object is at the version
	// the apply recorded (the apply's own result): not stale.
	applyAsOutpost(t, dyn, image(desired, "nginx:1.25"))
	drainUntilQuiet(events)
	if err := w.SetDesired(t.Context(), "web", []*unstructured.Unstructured{desired}, map[object.Ref]string{ref: liveVersion()}); err != nil {
		t.Fatal(err)
	}
	quiet("at the recorded resourceVersion", events)
	if got := w.Stale("web"); len(got) != 0 {
		t.Errorf("Stale(web) at the recorded resourceVersion = %v, want none", got)
	}

	// Without a record (the apply failed), nothing is stale either.
	applyAsOutpost(t, dyn, desired)
	drainUntilQuiet(events)
	if err := w.SetDesired(t.Context(), "web", []*unstructured.Unstructured{desired}, nil); err != nil {
		t.Fatal(err)
	}
	applyAsOutpost(t, dyn, image(desired, "nginx:1.24"))
	quiet("without a recorded resourceVersion", events)

	// Another manager's change is drift, not a stale write.
	if _, err := cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), "web",
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}},
		metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent(t, events); len(e.Stale) != 0 || len(e.Report.Fields) != 1 || e.Report.Fields[0].Manager != "kubectl" {
		t.Errorf("after kubectl scale: report %+v stale %+v, want replicas drift by kubectl only", e.Report, e.Stale)
	}
}

// drainUntilQuiet discards events until none came for 300 ms.
func drainUntilQuiet(events <-chan Event) {
	for {
		select {
		case <-events:
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// TestResyncKeepsTheDriftState: SetDesired again (the agent's periodic resync, which
// under drift: report leaves a drifted object as it is) repeats no event for an object
// whose drift did not change and keeps when the drift was first seen, while the report
// follows the new desired values; applying a new desired state clears the drift with
// one event.
func TestResyncKeepsTheDriftState(t *testing.T) {
	ns := env.CreateNamespace(t)
	dyn, cs, mapper := clients(t)
	withReplicas := func(n int64) *unstructured.Unstructured {
		d := deployment(t, ns)
		if err := unstructured.SetNestedField(d.Object, n, "spec", "replicas"); err != nil {
			t.Fatal(err)
		}
		return d
	}
	quiet := func(what string, events <-chan Event) {
		t.Helper()
		select {
		case e := <-events:
			t.Fatalf("%s: event %+v, want none", what, e.Report)
		case <-time.After(300 * time.Millisecond):
		}
	}

	desired := withReplicas(2)
	applyAsOutpost(t, dyn, desired)
	events := make(chan Event, 16)
	w := New(Config{Client: dyn, Mapper: mapper, OnEvent: func(e Event) { events <- e }})
	w.Start(t.Context())
	set := func(d *unstructured.Unstructured) {
		t.Helper()
		if err := w.SetDesired(t.Context(), "web", []*unstructured.Unstructured{d}, nil); err != nil {
			t.Fatal(err)
		}
	}
	set(desired)
	quiet("right after the apply", events)

	if _, err := cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), "web",
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 5}},
		metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	if e := waitEvent(t, events); !e.Report.Drifted() {
		t.Fatalf("after kubectl scale: %+v, want drift", e.Report)
	}
	first := w.Drift("web")
	if len(first) != 1 {
		t.Fatalf("Drift(web) = %+v, want one report", first)
	}
	seen := first[0].ObservedAt

	// The resync: the same desired state, the object left drifted.
	time.Sleep(10 * time.Millisecond) // so that a new observation would have a new time
	set(desired)
	quiet("a resync of the same desired state", events)
	if cur := w.Drift("web"); len(cur) != 1 || !cur[0].ObservedAt.Equal(seen) || w.DriftedObjects() != 1 {
		t.Errorf("Drift(web) after the resync = %+v (%d drifted), want the drift first seen at %s", cur, w.DriftedObjects(), seen)
	}

	// Git now wants 3 replicas: the same drift (kubectl's 5), reported against 3.
	set(withReplicas(3))
	quiet("a new desired value of a drifted field", events)
	if cur := w.Drift("web"); len(cur) != 1 || toInt(cur[0].Fields[0].Desired) != 3 || !cur[0].ObservedAt.Equal(seen) {
		t.Errorf("Drift(web) after desired 3 = %+v, want desired 3, first seen at %s", cur, seen)
	}

	// Git now wants what kubectl set and the agent applies it (taking the field
	// back): the drift clears, with one event.
	applyAsOutpost(t, dyn, withReplicas(5))
	set(withReplicas(5))
	if e := waitEvent(t, events); e.Report.Drifted() {
		t.Errorf("after desired 5 = live: %+v, want the drift cleared", e.Report)
	}
	quiet("after the clearing event", events)
	if cur := w.Drift("web"); len(cur) != 0 || w.DriftedObjects() != 0 {
		t.Errorf("Drift(web) = %+v, want none", cur)
	}
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A watch started while the apiserver does not answer does not hold SetDesired
// beyond SyncWait (the agent's loop waits on it): until it syncs, Get says it cannot
// tell (an empty cache would mean "deleted"), and once the apiserver answers its first
// list compares the objects: a drift made meanwhile is reported.
func TestSetDesiredDoesNotWaitForAnApiserverThatIsAway(t *testing.T) {
	ns := env.CreateNamespace(t)
	dyn, cs, mapper := clients(t)
	desired := deployment(t, ns)
	applyAsOutpost(t, dyn, desired)
	ref := object.Ref{Group: "apps", Kind: "Deployment", Namespace: ns, Name: "web"}

	var away atomic.Bool
	away.Store(true)
	wcfg := env.RESTConfig()
	wcfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if away.Load() {
				return nil, errors.New("connection refused")
			}
			return rt.RoundTrip(r)
		})
	})
	events := make(chan Event, 16)
	w := New(Config{Client: dynamic.NewForConfigOrDie(wcfg), Mapper: mapper, SyncWait: 500 * time.Millisecond,
		OnEvent: func(e Event) { events <- e }})
	w.Start(t.Context())
	start := time.Now()
	if err := w.SetDesired(t.Context(), "web", []*unstructured.Unstructured{desired}, nil); err != nil {
		t.Fatalf("SetDesired while the apiserver is away: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("SetDesired waited %s for a watch that cannot sync (SyncWait 500ms)", took.Round(time.Millisecond))
	}
	if _, ok, err := w.Get(ref); ok || err == nil {
		t.Errorf("Get from a watch not synced: ok=%v err=%v, want an error", ok, err)
	}

	// Drifted while the watch was away; then the apiserver answers.
	if _, err := cs.AppsV1().Deployments(ns).UpdateScale(t.Context(), "web",
		&autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns}, Spec: autoscalingv1.ScaleSpec{Replicas: 7}},
		metav1.UpdateOptions{FieldManager: "kubectl"}); err != nil {
		t.Fatal(err)
	}
	away.Store(false)
	deadline := time.Now().Add(time.Minute) // the reflector's list backoff
	for {
		if _, ok, err := w.Get(ref); ok && err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the watch did not sync within a minute of the apiserver answering")
		}
		time.Sleep(50 * time.Millisecond)
	}
	e := waitEvent(t, events)
	if e.App != "web" || len(e.Report.Fields) != 1 || e.Report.Fields[0].Path != "spec.replicas" || e.Report.Fields[0].Manager != "kubectl" {
		t.Errorf("event = %+v, want spec.replicas drifted by kubectl", e.Report)
	}
}
