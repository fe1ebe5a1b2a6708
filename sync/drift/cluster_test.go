package drift

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/sync/field"
	"github.com/outpost-gitops/outpost/sync/object"
)

// resourceFor maps the kinds these tests use to their resources.
func resourceFor(kind string) (schema.GroupVersionResource, bool) {
	switch kind {
	case "Deployment":
		return schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}, true
	case "ConfigMap":
		return schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}, true
	case "Secret":
		return schema.GroupVersionResource{Version: "v1", Resource: "secrets"}, true
	case "Service":
		return schema.GroupVersionResource{Version: "v1", Resource: "services"}, true
	case "ValidatingWebhookConfiguration":
		return schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingwebhookconfigurations"}, true
	}
	return schema.GroupVersionResource{}, false
}

// kube wraps a dynamic client for one test namespace.
type kube struct {
	t  *testing.T
	dc dynamic.Interface
	ns string
}

func newKube(t *testing.T) *kube {
	t.Helper()
	dc, err := dynamic.NewForConfig(env.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return &kube{t: t, dc: dc, ns: env.CreateNamespace(t)}
}

func (k *kube) resource(kind string) dynamic.ResourceInterface {
	gvr, ok := resourceFor(kind)
	if !ok {
		k.t.Fatalf("no resource for kind %s", kind)
	}
	if kind == "ValidatingWebhookConfiguration" {
		return k.dc.Resource(gvr)
	}
	return k.dc.Resource(gvr).Namespace(k.ns)
}

// object parses a manifest and puts it in the test namespace (namespaced kinds).
func (k *kube) object(manifest string) *unstructured.Unstructured {
	k.t.Helper()
	j, err := yaml.YAMLToJSON([]byte(manifest))
	if err != nil {
		k.t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(j); err != nil {
		k.t.Fatal(err)
	}
	if u.GetKind() == "ValidatingWebhookConfiguration" {
		u.SetName(u.GetName() + "-" + k.ns)
	} else {
		u.SetNamespace(k.ns)
	}
	return u
}

// apply server-side applies obj as Outpost does: field manager outpost, forced.
func (k *kube) apply(obj *unstructured.Unstructured, manager string) {
	k.t.Helper()
	if _, err := k.resource(obj.GetKind()).Apply(k.t.Context(), obj.GetName(), obj, metav1.ApplyOptions{FieldManager: manager, Force: true}); err != nil {
		k.t.Fatalf("apply %s %s as %s: %v", obj.GetKind(), obj.GetName(), manager, err)
	}
}

// patch merge-patches obj (or its subresource) as manager: an Update operation.
func (k *kube) patch(kind, name, manager, patch string, subresource ...string) {
	k.t.Helper()
	if _, err := k.resource(kind).Patch(k.t.Context(), name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: manager}, subresource...); err != nil {
		k.t.Fatalf("patch %s %s as %s: %v", kind, name, manager, err)
	}
}

// update reads obj, changes it and PUTs it back as manager, like kubectl edit.
func (k *kube) update(kind, name, manager string, change func(u *unstructured.Unstructured)) {
	k.t.Helper()
	u, err := k.resource(kind).Get(k.t.Context(), name, metav1.GetOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	change(u)
	if _, err := k.resource(kind).Update(k.t.Context(), u, metav1.UpdateOptions{FieldManager: manager}); err != nil {
		k.t.Fatalf("update %s %s as %s: %v", kind, name, manager, err)
	}
}

// detect reads the live object and runs Detect on it.
func (k *kube) detect(desired *unstructured.Unstructured) *Report {
	k.t.Helper()
	live, err := k.resource(desired.GetKind()).Get(k.t.Context(), desired.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		live, err = nil, nil
	}
	if err != nil {
		k.t.Fatal(err)
	}
	report, err := Detect(object.DefaultOwner(), desired, live, time.Now().UTC().Truncate(time.Second))
	if err != nil {
		k.t.Fatal(err)
	}
	return report
}

// wantNoDrift fails the test with the report when it holds drift.
func wantNoDrift(t *testing.T, r *Report) {
	t.Helper()
	if r.Drifted() {
		out, _ := json.MarshalIndent(r, "", "  ")
		t.Fatalf("unexpected drift:\n%s", out)
	}
}

func fieldsByPath(r *Report) map[string]FieldDrift {
	out := make(map[string]FieldDrift, len(r.Fields))
	for _, f := range r.Fields {
		out[f.Path] = f
	}
	return out
}

const webDeployment = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, app.kubernetes.io/part-of: shop}
  annotations: {}
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          args: [--port, "80"]
          ports:
            - containerPort: 80
              name: http
          env:
            - {name: MODE, value: fast}
            - {name: LEVEL, value: "3"}
          resources:
            limits: {cpu: 1000m, memory: 0.5Gi}
            requests: {cpu: 0.25}
          securityContext: {}
          volumeMounts:
            - {name: cache, mountPath: /cache}
        - name: sidecar
          image: busybox:1.36
      volumes:
        - name: cache
          emptyDir: {}
      tolerations:
        - {key: dedicated, operator: Equal, value: shop, effect: NoSchedule}
`

func TestClusterNoDriftRightAfterApply(t *testing.T) {
	k := newKube(t)
	manifests := map[string]string{
		"deployment": webDeployment,
		"service": `
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
    - {name: http, port: 80, targetPort: http}
    - {name: dns, port: 53, protocol: UDP}
`,
		"configmap": `
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, finalizers: [example.com/keep]}
data: {mode: fast}
binaryData: {blob: aGVsbG8=}
`,
		"secret with stringData": `
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: Opaque
data: {password: aHVudGVyMg==}
stringData: {user: admin}
`,
		"webhook": `
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: validator}
webhooks:
  - name: validate.shop.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    clientConfig:
      service: {name: validator, namespace: shop, path: /validate}
`,
	}
	for name, m := range manifests {
		t.Run(name, func(t *testing.T) {
			k := &kube{t: t, dc: k.dc, ns: k.ns}
			desired := k.object(m)
			k.apply(desired, object.DefaultFieldManager)
			wantNoDrift(t, k.detect(desired))
			if desired.GetKind() == "ConfigMap" {
				k.patch("ConfigMap", desired.GetName(), "cleanup", `{"metadata":{"finalizers":null}}`)
			}
		})
	}
}

func TestClusterScaleAndEdit(t *testing.T) {
	k := newKube(t)
	desired := k.object(webDeployment)
	k.apply(desired, object.DefaultFieldManager)
	// kubectl scale deployment web --replicas=5: an Update through the scale subresource.
	k.patch("Deployment", "web", "kubectl", `{"spec":{"replicas":5}}`, "scale")
	// kubectl edit: the image changes in a PUT by manager kubectl-edit.
	k.update("Deployment", "web", "kubectl-edit", func(u *unstructured.Unstructured) {
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		containers[0].(map[string]any)["image"] = "nginx:1.28"
		if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
	})

	report := k.detect(desired)
	got := fieldsByPath(report)
	if len(got) != 2 {
		out, _ := json.MarshalIndent(report, "", "  ")
		t.Fatalf("want 2 drifted fields, got:\n%s", out)
	}
	replicas := got["spec.replicas"]
	if replicas.Manager != "kubectl" || replicas.Operation != "Update" || replicas.Subresource != "scale" ||
		!field.Equal(replicas.Desired, 3) || !field.Equal(replicas.Live, 5) {
		t.Errorf("spec.replicas: got %+v, want 3 -> 5 by kubectl (Update, scale)", replicas)
	}
	if replicas.Time.IsZero() || (replicas.TimeObserved && !replicas.Time.Equal(report.ObservedAt)) {
		t.Errorf("spec.replicas: time %v (observed %v), want the manager's or the observation time %v", replicas.Time, replicas.TimeObserved, report.ObservedAt)
	}
	t.Logf("scale entry time: %v (observed: %v)", replicas.Time, replicas.TimeObserved)
	image := got["spec.template.spec.containers[name=web].image"]
	if image.Manager != "kubectl-edit" || image.Operation != "Update" || image.Desired != "nginx:1.27" || image.Live != "nginx:1.28" {
		t.Errorf("image: got %+v, want nginx:1.27 -> nginx:1.28 by kubectl-edit (Update)", image)
	}
	if image.TimeObserved || image.Time.IsZero() || image.Time.After(report.ObservedAt.Add(time.Second)) {
		t.Errorf("image: time %v (observed %v), want kubectl-edit's managedFields time", image.Time, image.TimeObserved)
	}

	// Outpost applies again (self-heal): ownership returns, drift is gone.
	k.apply(desired, object.DefaultFieldManager)
	wantNoDrift(t, k.detect(desired))
}

func TestClusterFieldsOutpostNeverSet(t *testing.T) {
	k := newKube(t)
	desired := k.object(strings.Replace(webDeployment, "  replicas: 3\n", "", 1))
	if _, found, _ := unstructured.NestedInt64(desired.Object, "spec", "replicas"); found {
		t.Fatal("the manifest still sets replicas")
	}
	k.apply(desired, object.DefaultFieldManager)
	// An HPA scales through the scale subresource.
	k.patch("Deployment", "web", "hpa-controller", `{"spec":{"replicas":7}}`, "scale")
	// Someone labels the object and annotates the pod template.
	k.patch("Deployment", "web", "kubectl-label", `{"metadata":{"labels":{"team":"checkout"}}}`)
	k.patch("Deployment", "web", "kubectl-rollout", `{"spec":{"template":{"metadata":{"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-03-01T10:00:00Z"}}}}}`)
	wantNoDrift(t, k.detect(desired))

	// A webhook's caBundle injected by another manager.
	hook := k.object(`
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: validator}
webhooks:
  - name: validate.shop.example.com
    admissionReviewVersions: [v1]
    sideEffects: None
    clientConfig:
      service: {name: validator, namespace: shop, path: /validate}
`)
	k.apply(hook, object.DefaultFieldManager)
	t.Cleanup(func() { _ = k.resource(hook.GetKind()).Delete(t.Context(), hook.GetName(), metav1.DeleteOptions{}) })
	k.update(hook.GetKind(), hook.GetName(), "cainjector", func(u *unstructured.Unstructured) {
		hooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
		hooks[0].(map[string]any)["clientConfig"].(map[string]any)["caBundle"] = "Y2VydGlmaWNhdGU="
		if err := unstructured.SetNestedSlice(u.Object, hooks, "webhooks"); err != nil {
			t.Fatal(err)
		}
	})
	wantNoDrift(t, k.detect(hook))
}

func TestClusterRemovedAndSecretFields(t *testing.T) {
	k := newKube(t)
	deploy := k.object(webDeployment)
	k.apply(deploy, object.DefaultFieldManager)
	// kubectl edit removes a label Outpost set and an env var.
	k.update("Deployment", "web", "kubectl-edit", func(u *unstructured.Unstructured) {
		labels := u.GetLabels()
		delete(labels, "app.kubernetes.io/part-of")
		u.SetLabels(labels)
		containers, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		c := containers[0].(map[string]any)
		c["env"] = c["env"].([]any)[:1]
		if err := unstructured.SetNestedSlice(u.Object, containers, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
	})
	got := fieldsByPath(k.detect(deploy))
	for _, path := range []string{`metadata.labels["app.kubernetes.io/part-of"]`, "spec.template.spec.containers[name=web].env[name=LEVEL]"} {
		f, ok := got[path]
		if !ok {
			t.Errorf("%s: not reported; got %v", path, got)
			continue
		}
		if f.Live != nil || f.Desired == nil || f.Manager != "" || !f.TimeObserved {
			t.Errorf("%s: got %+v, want removed (live nil, no manager, observed time)", path, f)
		}
	}
	if len(got) != 2 {
		t.Errorf("want 2 drifted fields, got %v", got)
	}

	secret := k.object(`
apiVersion: v1
kind: Secret
metadata: {name: creds}
type: Opaque
data: {password: aHVudGVyMg==}
stringData: {user: admin}
`)
	k.apply(secret, object.DefaultFieldManager)
	k.patch("Secret", "creds", "kubectl-edit", `{"data":{"password":"bGV0bWVpbg==","user":"cm9vdA=="}}`)
	report := k.detect(secret)
	out, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"aHVudGVyMg==", "bGV0bWVpbg==", "cm9vdA==", "admin", "YWRtaW4="} {
		if strings.Contains(string(out), v) {
			t.Errorf("report contains secret value %q: %s", v, out)
		}
	}
	got = fieldsByPath(report)
	for _, path := range []string{"data.password", "data.user"} {
		if f := got[path]; f.Manager != "kubectl-edit" || !f.Redacted {
			t.Errorf("%s: got %+v, want redacted drift by kubectl-edit; report %s", path, f, out)
		}
	}
}

func TestClusterDeleted(t *testing.T) {
	k := newKube(t)
	desired := k.object(`{apiVersion: v1, kind: ConfigMap, metadata: {name: settings}, data: {mode: fast}}`)
	k.apply(desired, object.DefaultFieldManager)
	wantNoDrift(t, k.detect(desired))
	if err := k.resource("ConfigMap").Delete(t.Context(), "settings", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	report := k.detect(desired)
	if !report.Deleted || !report.Drifted() {
		t.Fatalf("got %+v, want Deleted", report)
	}
}

// TestAttackSecretLastAppliedNotReported: a Secret whose last-applied-configuration
// annotation Outpost owns (kept in Git by someone migrating from kubectl apply) never
// sends that annotation's value, a copy of the Secret's data, to the hub when it
// drifts (security review L7).
func TestAttackSecretLastAppliedNotReported(t *testing.T) {
	k := newKube(t)
	secret := k.object(`
apiVersion: v1
kind: Secret
metadata:
  name: migrated
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: '{"data":{"password":"aHVudGVyMg=="}}'
type: Opaque
data: {password: aHVudGVyMg==}
`)
	k.apply(secret, object.DefaultFieldManager)
	k.patch("Secret", "migrated", "kubectl-edit", `{"metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"data\":{\"password\":\"bGV0bWVpbg==\"}}"}}}`)
	report := k.detect(secret)
	out, err := json.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"aHVudGVyMg==", "bGV0bWVpbg=="} {
		if strings.Contains(string(out), v) {
			t.Errorf("report contains secret value %q: %s", v, out)
		}
	}
	got := fieldsByPath(report)
	path := `metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]`
	if f, ok := got[path]; !ok || !f.Redacted || f.Manager != "kubectl-edit" {
		t.Errorf("%s: got %+v (present %v), want redacted drift by kubectl-edit; report %s", path, f, ok, out)
	}
}
