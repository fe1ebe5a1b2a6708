package health

import (
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/outpost-gitops/outpost/sync/object"
)

// applyAll server-side applies manifests into ns as Outpost and returns their refs.
func applyAll(t *testing.T, ns string, manifests ...string) []object.Ref {
	t.Helper()
	dc, err := dynamic.NewForConfig(env.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	gvrs := map[string]schema.GroupVersionResource{
		"Deployment": {Group: "apps", Version: "v1", Resource: "deployments"},
		"ConfigMap":  {Version: "v1", Resource: "configmaps"},
	}
	refs := make([]object.Ref, 0, len(manifests))
	for _, m := range manifests {
		u := mustObject(t, m)
		u.SetNamespace(ns)
		if _, err := dc.Resource(gvrs[u.GetKind()]).Namespace(ns).Apply(t.Context(), u.GetName(), u, metav1.ApplyOptions{FieldManager: "outpost", Force: true}); err != nil {
			t.Fatalf("apply %s: %v", object.RefOf(u), err)
		}
		refs = append(refs, object.RefOf(u))
	}
	return refs
}

func deployment(name string, replicas int, extra string) string {
	return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `}
spec:
  replicas: ` + strconv.Itoa(replicas) + `
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      containers: [{name: app, image: registry.example/app:1.0}]
` + extra
}

func getter(t *testing.T) *DynamicGetter {
	t.Helper()
	g, err := NewDynamicGetterForConfig(env.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestClusterDeploymentBecomesCurrent(t *testing.T) {
	ns := env.CreateNamespace(t)
	refs := applyAll(t, ns,
		`{apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {mode: fast}}`,
		deployment("web", 2, ""),
	)
	g := getter(t)
	first, err := Check(t.Context(), g, refs)
	if err != nil {
		t.Fatal(err)
	}
	if first.Status != InProgress || first.Failing == nil || first.Failing.Ref != refs[1] {
		t.Fatalf("right after apply: %s (%s), want InProgress on %s", first.Status, first.Message, refs[1])
	}
	if first.Objects[0].Status != Current {
		t.Errorf("ConfigMap: %s, want Current", first.Objects[0].Status)
	}
	got, err := Wait(t.Context(), g, refs, WaitOptions{Timeout: 2 * time.Minute, Interval: 250 * time.Millisecond, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != Current || got.Failing != nil {
		t.Fatalf("after Wait: %s (%s), want Current", got.Status, got.Message)
	}
	t.Logf("InProgress: %q -> Current: %q", first.Message, got.Message)
}

func TestClusterUnschedulable(t *testing.T) {
	ns := env.CreateNamespace(t)
	g := getter(t)
	unschedulable := "      nodeSelector: {outpost.dev/no-such-node: \"true\"}\n"
	tests := map[string]struct {
		deployment string
		timeout    time.Duration
		want       Status
		wantInMsg  string
	}{
		"progress deadline exceeded": {
			deployment: deployment("stuck-deadline", 1, unschedulable) + "  progressDeadlineSeconds: 5\n",
			timeout:    2 * time.Minute,
			want:       Failed,
			wantInMsg:  "Progress deadline exceeded",
		},
		"health timeout": {
			deployment: deployment("stuck-timeout", 1, unschedulable),
			timeout:    8 * time.Second,
			want:       Timeout,
			wantInMsg:  "not Current after 8s",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			refs := applyAll(t, ns, tc.deployment)
			got, err := Wait(t.Context(), g, refs, WaitOptions{Timeout: tc.timeout, Interval: 500 * time.Millisecond, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Message, tc.want)
			}
			if got.Failing == nil || got.Failing.Ref != refs[0] {
				t.Fatalf("failing %v, want %s", got.Failing, refs[0])
			}
			if !strings.Contains(got.Message, refs[0].String()) || !strings.Contains(got.Message, tc.wantInMsg) {
				t.Fatalf("message %q does not name %s and contain %q", got.Message, refs[0], tc.wantInMsg)
			}
			t.Logf("%s: %s", got.Status, got.Message)
		})
	}
}

func TestClusterMissingObject(t *testing.T) {
	ns := env.CreateNamespace(t)
	refs := applyAll(t, ns, `{apiVersion: v1, kind: ConfigMap, metadata: {name: settings}}`)
	refs = append(refs,
		object.Ref{Kind: "ConfigMap", Namespace: ns, Name: "gone"},
		object.Ref{Group: "example.com", Kind: "Widget", Namespace: ns, Name: "w"},
	)
	got, err := Check(t.Context(), getter(t), refs)
	if err != nil {
		t.Fatal(err)
	}
	want := []Status{Current, NotFound, Unknown}
	for i, o := range got.Objects {
		if o.Status != want[i] {
			t.Errorf("%s: %s (%s), want %s", o.Ref, o.Status, o.Message, want[i])
		}
	}
	if got.Status != NotFound || got.Failing == nil || got.Failing.Ref.Name != "gone" {
		t.Errorf("app: %s failing %v, want NotFound on gone", got.Status, got.Failing)
	}
}
