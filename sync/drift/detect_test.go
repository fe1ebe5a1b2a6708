package drift

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/field"
	"github.com/outpost-gitops/outpost/sync/object"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var observedAt = time.Date(2026, 3, 1, 10, 10, 0, 0, time.UTC)

// loadPair reads testdata/<name>.yaml: the desired object, then the live one.
func loadPair(t testing.TB, name string) (desired, live *unstructured.Unstructured) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs := strings.Split(string(data), "\n---\n")
	if len(docs) != 2 {
		t.Fatalf("%s: want 2 YAML documents, got %d", name, len(docs))
	}
	objs := make([]*unstructured.Unstructured, 2)
	for i, doc := range docs {
		j, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: document %d: %v", name, i, err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(j); err != nil {
			t.Fatalf("%s: document %d: %v", name, i, err)
		}
		objs[i] = u
	}
	return objs[0], objs[1]
}

// drifted is what a test expects of one drifted field.
type drifted struct {
	manager  string
	desired  any
	live     any
	observed bool
}

func TestDetect(t *testing.T) {
	tests := map[string]struct {
		// want maps each drifted path to its expectations; empty means no drift.
		want map[string]drifted
	}{
		"scale-and-edit": {want: map[string]drifted{
			"spec.replicas": {manager: "kubectl", desired: int64(3), live: int64(5), observed: true},
			"spec.template.spec.containers[name=web].image": {manager: "kubectl-edit", desired: "nginx:1.27", live: "nginx:1.28"},
		}},
		"captured-deployment": {want: map[string]drifted{
			"spec.replicas": {manager: "kubectl", desired: int64(3), live: int64(5), observed: true},
			"spec.template.spec.containers[name=web].image": {manager: "kubectl-edit", desired: "nginx:1.27", live: "nginx:1.28"},
		}},
		"hpa-owns-replicas": {},
		"webhook-cabundle":  {},
		"removed-fields": {want: map[string]drifted{
			`metadata.labels.tier`:                    {manager: "", desired: "backend", live: nil, observed: true},
			`metadata.finalizers[=example.com/other]`: {manager: "", desired: "example.com/other", live: nil, observed: true},
			`data.level`: {manager: "", desired: "3", live: nil, observed: true},
		}},
		"changed-keep-ownership": {want: map[string]drifted{
			"spec.selector": {manager: "kubectl-replace",
				desired: map[string]any{"matchLabels": map[string]any{"app": "web"}},
				live:    map[string]any{"matchLabels": map[string]any{"app": "web", "track": "canary"}}},
			"spec.template.spec.containers[name=web].image": {manager: "outpost", desired: "nginx:1.28", live: "nginx:1.27"},
		}},
		"secret": {want: map[string]drifted{
			"data.password": {manager: "kubectl-edit", desired: Redacted, live: Redacted},
			"data.token":    {manager: "", desired: Redacted, live: nil, observed: true},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			desired, live := loadPair(t, name)
			report, err := Detect(object.DefaultOwner(), desired, live, observedAt)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]FieldDrift{}
			for _, f := range report.Fields {
				got[f.Path] = f
			}
			for path, w := range tc.want {
				f, ok := got[path]
				if !ok {
					t.Errorf("%s: not reported", path)
					continue
				}
				if f.Manager != w.manager {
					t.Errorf("%s: manager %q, want %q", path, f.Manager, w.manager)
				}
				if !field.Equal(f.Desired, w.desired) || !field.Equal(f.Live, w.live) {
					t.Errorf("%s: %v -> %v, want %v -> %v", path, f.Desired, f.Live, w.desired, w.live)
				}
				if f.TimeObserved != w.observed {
					t.Errorf("%s: timeObserved %v, want %v", path, f.TimeObserved, w.observed)
				}
				if f.TimeObserved && !f.Time.Equal(observedAt) {
					t.Errorf("%s: time %v, want the observation time %v", path, f.Time, observedAt)
				}
				if !f.TimeObserved && (f.Time.IsZero() || f.Time.After(observedAt)) {
					t.Errorf("%s: time %v, want the manager's time", path, f.Time)
				}
			}
			for path, f := range got {
				if _, ok := tc.want[path]; !ok {
					t.Errorf("%s: unexpected drift %v -> %v by %q", path, f.Desired, f.Live, f.Manager)
				}
			}
			if report.Drifted() != (len(tc.want) > 0) {
				t.Errorf("Drifted() = %v with %d expected fields", report.Drifted(), len(tc.want))
			}
			golden(t, name, report)
		})
	}
}

// golden compares a report with testdata/<name>.golden.json.
func golden(t *testing.T, name string, report *Report) {
	t.Helper()
	got, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("report differs from %s (run with -update after checking):\n%s", path, got)
	}
}

func TestDetectSecretValuesNeverReported(t *testing.T) {
	desired, live := loadPair(t, "secret")
	report, err := Detect(object.DefaultOwner(), desired, live, observedAt)
	if err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"aHVudGVyMg==", "bGV0bWVpbg==", "YWRtaW4=", "s3cr3t", "czNjcjN0", "hunter2", "letmein"} {
		if bytes.Contains(out, []byte(secret)) {
			t.Errorf("report contains secret value %q: %s", secret, out)
		}
	}
	if len(report.Fields) == 0 {
		t.Fatal("no drift reported for the Secret; the test would prove nothing")
	}
}

func TestDetectDeleted(t *testing.T) {
	desired, _ := loadPair(t, "scale-and-edit")
	report, err := Detect(object.DefaultOwner(), desired, nil, observedAt)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Deleted || !report.Drifted() || len(report.Fields) != 0 {
		t.Fatalf("got %+v, want Deleted and no fields", report)
	}
	want := object.Ref{Group: "apps", Kind: "Deployment", Namespace: "shop", Name: "web"}
	if report.Object != want || report.Version != "v1" || !report.ObservedAt.Equal(observedAt) {
		t.Fatalf("got object %v at %v, want %v at %v", report.Object, report.ObservedAt, want, observedAt)
	}
}

func TestDetectErrors(t *testing.T) {
	tests := map[string]struct {
		edit    func(desired, live *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured)
		wantErr error
		// wantIn is a substring of the error message.
		wantIn string
	}{
		"nil desired": {
			edit: func(_, l *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured) {
				return nil, l
			},
			wantIn: "desired object is nil",
		},
		"other object": {
			edit: func(d, l *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured) {
				l.SetName("api")
				return d, l
			},
			wantIn: "Deployment.apps/shop/web: live object is Deployment.apps/shop/api",
		},
		"managedFields stripped": {
			edit: func(d, l *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured) {
				l.SetManagedFields(nil)
				return d, l
			},
			wantErr: ErrNoManagedFields,
			wantIn:  "Deployment.apps/shop/web",
		},
		"malformed fieldsV1": {
			edit: func(d, l *unstructured.Unstructured) (*unstructured.Unstructured, *unstructured.Unstructured) {
				mf := l.Object["metadata"].(map[string]any)["managedFields"].([]any)
				mf[1].(map[string]any)["fieldsV1"] = "f:spec"
				return d, l
			},
			wantIn: `manager "kubectl"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			desired, live := tc.edit(loadPair(t, "scale-and-edit"))
			_, err := Detect(object.DefaultOwner(), desired, live, observedAt)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Errorf("error %v is not %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantIn) {
				t.Errorf("error %q does not contain %q", err, tc.wantIn)
			}
		})
	}
}

func TestDetectDoesNotModifyInputs(t *testing.T) {
	desired, live := loadPair(t, "secret")
	d0, l0 := desired.DeepCopy(), live.DeepCopy()
	report, err := Detect(object.DefaultOwner(), desired, live, observedAt)
	if err != nil {
		t.Fatal(err)
	}
	if !field.Equal(desired.Object, d0.Object) || !field.Equal(live.Object, l0.Object) {
		t.Fatal("Detect modified its inputs")
	}
	if len(report.Fields) == 0 {
		t.Fatal("no drift; the test would prove nothing")
	}
}

func TestDetectDesiredWithoutNamespace(t *testing.T) {
	desired, live := loadPair(t, "scale-and-edit")
	desired.SetNamespace("")
	report, err := Detect(object.DefaultOwner(), desired, live, observedAt)
	if err != nil {
		t.Fatal(err)
	}
	if report.Object.Namespace != "shop" || len(report.Fields) != 2 {
		t.Fatalf("got %s with %d fields, want Deployment/shop/web with 2", report.Object, len(report.Fields))
	}
}

// A create-only object drifts only by being deleted: its content is someone else's.
func TestDetectCreateOnly(t *testing.T) {
	desired, live := loadPair(t, "scale-and-edit")
	before, err := Detect(object.DefaultOwner(), desired, live, observedAt)
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Fields) == 0 {
		t.Fatal("scale-and-edit has no drift; the test would prove nothing")
	}
	desired.SetAnnotations(map[string]string{object.ApplyAnnotation: object.ApplyCreateOnly})
	report, err := Detect(object.DefaultOwner(), desired, live, observedAt)
	if err != nil {
		t.Fatal(err)
	}
	if report.Drifted() {
		t.Errorf("create-only object reported as drifted: %+v", report)
	}
	report, err = Detect(object.DefaultOwner(), desired, nil, observedAt)
	if err != nil {
		t.Fatal(err)
	}
	if !report.Deleted {
		t.Errorf("deleted create-only object not reported: %+v", report)
	}
}
