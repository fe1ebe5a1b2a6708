package health

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/object"
)

func mustObject(t testing.TB, y string) *unstructured.Unstructured {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		t.Fatal(err)
	}
	return u
}

const deploymentAvailable = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 2}
spec: {replicas: 2}
status:
  observedGeneration: 2
  replicas: 2
  updatedReplicas: 2
  readyReplicas: 2
  availableReplicas: 2
  conditions:
    - {type: Available, status: "True"}
    - {type: Progressing, status: "True", reason: NewReplicaSetAvailable}
`

func TestOf(t *testing.T) {
	tests := map[string]struct {
		obj       string
		want      Status
		wantInMsg string
	}{
		"configmap has no status": {
			obj:  "{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: shop}, data: {a: b}}",
			want: Current,
		},
		"available deployment": {obj: deploymentAvailable, want: Current, wantInMsg: "Replicas: 2"},
		"deployment not observed yet": {
			obj:       "{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop, generation: 3}, spec: {replicas: 2}, status: {observedGeneration: 2}}",
			want:      InProgress,
			wantInMsg: "generation is 3",
		},
		"deployment missing replicas": {
			obj: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 1}
spec: {replicas: 2}
status: {observedGeneration: 1, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 1}
`,
			want:      InProgress,
			wantInMsg: "Available: 1/2",
		},
		"deployment past its progress deadline": {
			obj: `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 1}
spec: {replicas: 1, progressDeadlineSeconds: 5}
status:
  observedGeneration: 1
  replicas: 1
  unavailableReplicas: 1
  conditions:
    - {type: Progressing, status: "False", reason: ProgressDeadlineExceeded, message: ReplicaSet "web-1" has timed out progressing.}
`,
			want:      Failed,
			wantInMsg: "Progress deadline exceeded",
		},
		"terminating": {
			obj:  "{apiVersion: v1, kind: ConfigMap, metadata: {name: c, namespace: shop, deletionTimestamp: '2026-03-01T10:00:00Z', finalizers: [x]}}",
			want: Terminating,
		},
		"custom resource stalled": {
			obj: `
apiVersion: example.com/v1
kind: Widget
metadata: {name: w, namespace: shop, generation: 1}
status:
  observedGeneration: 1
  conditions: [{type: Stalled, status: "True", reason: Broken, message: bad config}]
`,
			want:      Failed,
			wantInMsg: "bad config",
		},
		"custom resource not ready": {
			obj:       "{apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {conditions: [{type: Ready, status: 'False', message: waiting}]}}",
			want:      InProgress,
			wantInMsg: "waiting",
		},
		"malformed status": {
			obj:  "{apiVersion: example.com/v1, kind: Widget, metadata: {name: w, generation: 1}, status: {observedGeneration: one}}",
			want: Unknown,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			obj := mustObject(t, tc.obj)
			got := Of(object.RefOf(obj), obj)
			if got.Status != tc.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Message, tc.want)
			}
			if !strings.Contains(got.Message, tc.wantInMsg) {
				t.Fatalf("message %q does not contain %q", got.Message, tc.wantInMsg)
			}
			if got.Ref != object.RefOf(obj) {
				t.Fatalf("ref %v, want %v", got.Ref, object.RefOf(obj))
			}
		})
	}
	if got := Of(object.Ref{Kind: "ConfigMap", Name: "gone"}, nil); got.Status != NotFound {
		t.Fatalf("nil object: status %s, want NotFound", got.Status)
	}
}

func obj(kind, name string, s Status, msg string) ObjectHealth {
	return ObjectHealth{Ref: object.Ref{Kind: kind, Namespace: "shop", Name: name}, Status: s, Message: msg}
}

func TestAggregate(t *testing.T) {
	tests := map[string]struct {
		objects     []ObjectHealth
		want        Status
		wantFailing string // the failing object's name, "" for none
		wantMessage string
	}{
		"no objects": {want: Current, wantMessage: "no objects"},
		"all current": {
			objects:     []ObjectHealth{obj("ConfigMap", "a", Current, ""), obj("Deployment", "b", Current, "")},
			want:        Current,
			wantMessage: "all 2 objects are Current",
		},
		"one in progress": {
			objects:     []ObjectHealth{obj("ConfigMap", "a", Current, ""), obj("Deployment", "web", InProgress, "Available: 0/1")},
			want:        InProgress,
			wantFailing: "web",
			wantMessage: "Deployment/shop/web is InProgress: Available: 0/1",
		},
		"failed beats in progress, whatever the order": {
			objects: []ObjectHealth{
				obj("Deployment", "a", InProgress, "x"),
				obj("Deployment", "b", Failed, "Progress deadline exceeded"),
				obj("Deployment", "c", Failed, "Progress deadline exceeded"),
			},
			want:        Failed,
			wantFailing: "b",
			wantMessage: "Deployment/shop/b is Failed: Progress deadline exceeded (and 1 more Failed)",
		},
		"not found beats terminating and in progress": {
			objects: []ObjectHealth{
				obj("Deployment", "a", InProgress, "x"),
				obj("ConfigMap", "b", Terminating, "Resource scheduled for deletion"),
				obj("Service", "c", NotFound, "object not found"),
			},
			want:        NotFound,
			wantFailing: "c",
			wantMessage: "Service/shop/c is NotFound: object not found",
		},
		"unknown beats in progress": {
			objects:     []ObjectHealth{obj("Deployment", "a", InProgress, "x"), obj("Widget", "w", Unknown, "get: forbidden")},
			want:        Unknown,
			wantFailing: "w",
			wantMessage: "Widget/shop/w is Unknown: get: forbidden",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Aggregate(tc.objects)
			if got.Status != tc.want {
				t.Errorf("status %s, want %s", got.Status, tc.want)
			}
			switch {
			case tc.wantFailing == "" && got.Failing != nil:
				t.Errorf("failing %v, want none", got.Failing.Ref)
			case tc.wantFailing != "" && (got.Failing == nil || got.Failing.Ref.Name != tc.wantFailing):
				t.Errorf("failing %v, want %s", got.Failing, tc.wantFailing)
			}
			if got.Message != tc.wantMessage {
				t.Errorf("message %q, want %q", got.Message, tc.wantMessage)
			}
			if len(got.Objects) != len(tc.objects) {
				t.Errorf("%d objects, want %d", len(got.Objects), len(tc.objects))
			}
		})
	}
}

// scriptedGetter returns, for the n-th poll, the objects of script[min(n, len-1)].
type scriptedGetter struct {
	script [][]*unstructured.Unstructured
	polls  atomic.Int64
}

func (g *scriptedGetter) Get(_ context.Context, ref object.Ref) (*unstructured.Unstructured, error) {
	step := g.script[min(int(g.polls.Load()), len(g.script)-1)]
	for _, o := range step {
		if o != nil && o.GetName() == ref.Name {
			return o, nil
		}
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: ref.Kind}, ref.Name)
}

// pollingGetter counts polls: one Check per poll reads the first ref first.
type pollingGetter struct {
	*scriptedGetter
	first string
}

func (g pollingGetter) Get(ctx context.Context, ref object.Ref) (*unstructured.Unstructured, error) {
	o, err := g.scriptedGetter.Get(ctx, ref)
	if ref.Name == g.first {
		defer g.polls.Add(1)
	}
	return o, err
}

func TestWait(t *testing.T) {
	progressing := mustObject(t, "{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop, generation: 1}, spec: {replicas: 1}, status: {observedGeneration: 1}}")
	available := mustObject(t, deploymentAvailable)
	failed := mustObject(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 1}
spec: {replicas: 1}
status:
  observedGeneration: 1
  conditions: [{type: Progressing, status: "False", reason: ProgressDeadlineExceeded}]
`)
	web := object.RefOf(available)
	tests := map[string]struct {
		script    [][]*unstructured.Unstructured
		timeout   time.Duration
		want      Status
		wantPolls int64 // polls made, 0 to skip the check
		wantInMsg string
	}{
		"becomes current":          {script: [][]*unstructured.Unstructured{{progressing}, {progressing}, {available}}, timeout: time.Minute, want: Current, wantPolls: 3},
		"fails fast":               {script: [][]*unstructured.Unstructured{{progressing}, {failed}}, timeout: time.Minute, want: Failed, wantPolls: 2, wantInMsg: "Deployment.apps/shop/web is Failed"},
		"times out":                {script: [][]*unstructured.Unstructured{{progressing}}, timeout: 50 * time.Millisecond, want: Timeout, wantInMsg: "not Current after 50ms: Deployment.apps/shop/web is InProgress"},
		"missing object times out": {script: [][]*unstructured.Unstructured{{nil}}, timeout: 50 * time.Millisecond, want: Timeout, wantInMsg: "Deployment.apps/shop/web is NotFound"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			g := pollingGetter{scriptedGetter: &scriptedGetter{script: tc.script}, first: web.Name}
			got, err := Wait(t.Context(), g, []object.Ref{web}, WaitOptions{Timeout: tc.timeout, Interval: time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tc.want {
				t.Fatalf("status %s (%s), want %s", got.Status, got.Message, tc.want)
			}
			if !strings.Contains(got.Message, tc.wantInMsg) {
				t.Errorf("message %q does not contain %q", got.Message, tc.wantInMsg)
			}
			if tc.want != Current && (got.Failing == nil || got.Failing.Ref != web) {
				t.Errorf("failing %v, want %v", got.Failing, web)
			}
			if n := g.polls.Load(); tc.wantPolls > 0 && n != tc.wantPolls {
				t.Errorf("%d polls, want %d", n, tc.wantPolls)
			}
		})
	}
}

func TestWaitContextEnds(t *testing.T) {
	progressing := mustObject(t, "{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: shop, generation: 1}, spec: {replicas: 1}, status: {observedGeneration: 1}}")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	g := &scriptedGetter{script: [][]*unstructured.Unstructured{{progressing}}}
	got, err := Wait(ctx, g, []object.Ref{object.RefOf(progressing)}, WaitOptions{Timeout: time.Hour, Interval: time.Millisecond})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error %v, want context.DeadlineExceeded", err)
	}
	if got.Status != InProgress {
		t.Fatalf("last health %s, want InProgress", got.Status)
	}
}
