package render

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/outpost-gitops/outpost/sync/chart"
	"github.com/outpost-gitops/outpost/sync/object"
)

// newHelmRepo is newRepo with the testdata chart "shop" at charts/shop and app web
// rendering it with the given app.yaml.
func newHelmRepo(t *testing.T, appYAML string, files map[string]string) string {
	t.Helper()
	all := map[string]string{"apps/web/deploy.yaml": "", "apps/web/app.yaml": appYAML}
	for k, v := range files {
		all[k] = v
	}
	root := newRepo(t, all)
	if err := os.CopyFS(filepath.Join(root, "charts/shop"), os.DirFS("testdata/charts/shop")); err != nil {
		t.Fatal(err)
	}
	return root
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func TestHelmRender(t *testing.T) {
	root := newHelmRepo(t, `namespace: web
helm:
  path: charts/shop
  valuesFiles: [apps/web/values.yaml]
  values:
    image: {tag: "${APP_VERSION}"}
    greeting: inline
`, map[string]string{
		"clusters/test/cluster.yaml":    "labels: {env: test}\nvars: {replicas: \"3\"}\n",
		"apps/web/values.yaml":          "# ${NOT_A_VAR} in a comment is left alone\nreplicaCount: ${replicas} # ${NOR_THIS}\ngreeting: from-file\n",
		"clusters/test/values/web.yaml": "greeting: per-cluster ${CLUSTER_LABEL_env}\n",
	})
	res, err := renderApp(t, root, "web", Options{KubeVersion: "v1.31.4", APIVersions: []string{"apps/v1", "shop.example.com/v1/Widget"}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range res.Objects {
		got = append(got, object.RefOf(o).String())
		if !object.DefaultOwner().Owns(o.GetLabels(), "web") {
			t.Errorf("%s lacks the ownership labels: %v", object.RefOf(o), o.GetLabels())
		}
	}
	want := []string{
		"CustomResourceDefinition.apiextensions.k8s.io/widgets.shop.example.com",
		"ConfigMap/web/web-shop-scripts", "Service/web/web-cache", "Deployment.apps/web/web-shop", "Widget.shop.example.com/web/web-shop-default",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("objects = %q, want %q", got, want)
	}
	d := find(res.Objects, "Deployment", "web-shop")
	if n, _, _ := unstructured.NestedInt64(d.Object, "spec", "replicas"); n != 3 {
		t.Errorf("replicas = %d, want 3 (valuesFiles, ${replicas} substituted as a number)", n)
	}
	c := d.Object["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[0].(map[string]any)
	if c["image"] != "ghcr.io/example/shop:1.0.0" {
		t.Errorf("image = %v, want the inline value with ${APP_VERSION}", c["image"])
	}
	env := c["env"].([]any)
	if g := env[0].(map[string]any)["value"]; g != "per-cluster test" {
		t.Errorf("GREETING = %v, want the per-cluster values file last", g)
	}
	if m := env[1].(map[string]any)["value"]; m != "31" {
		t.Errorf("KUBE_MINOR = %v, want 31 from Options.KubeVersion", m)
	}
	cm := find(res.Objects, "ConfigMap", "web-shop-scripts")
	data := cm.Object["data"].(map[string]any)
	if s := data["start.sh"].(string); !strings.Contains(s, "${HOME}") || !strings.Contains(s, "${PORT:-8080}") {
		t.Errorf("start.sh = %q: the chart's output must never be substituted", s)
	}
	if data["widgets"] != "served" {
		t.Errorf("data.widgets = %v: .Capabilities.APIVersions must come from Options", data["widgets"])
	}
	crd := find(res.Objects, "CustomResourceDefinition", "widgets.shop.example.com")
	if crd.GetAnnotations()[object.PruneAnnotation] != object.PruneDisabled {
		t.Errorf("CRD from crds/ annotations = %v, want %s: %s", crd.GetAnnotations(), object.PruneAnnotation, object.PruneDisabled)
	}
	if len(res.Hooks) != 2 {
		t.Fatalf("hooks = %d, want the pre Job and the post ConfigMap (test hook skipped)", len(res.Hooks))
	}
	pre, post := res.Hooks[0], res.Hooks[1]
	if pre.Phase != HookPre || pre.Object.GetKind() != "Job" || pre.Weight != -5 || !reflect.DeepEqual(pre.DeletePolicies, []string{HookBeforeCreation, HookSucceeded}) || pre.Object.GetNamespace() != "web" {
		t.Errorf("pre hook = %+v", pre)
	}
	if post.Phase != HookPost || post.Object.GetName() != "web-shop-installed" || !reflect.DeepEqual(post.DeletePolicies, []string{HookBeforeCreation}) {
		t.Errorf("post hook = %+v", post)
	}
	if !object.DefaultOwner().Owns(pre.Object.GetLabels(), "web") {
		t.Errorf("hook lacks the ownership labels")
	}
	for _, src := range []string{"apps/web/values.yaml", "charts/shop/Chart.yaml", "charts/shop/templates/deployment.yaml", "charts/shop/charts/cache/values.yaml", "clusters/test/values/web.yaml"} {
		if !slices.Contains(res.Sources, src) {
			t.Errorf("sources %q lack %s", res.Sources, src)
		}
	}
	again, err := renderApp(t, root, "web", Options{KubeVersion: "v1.31.4", APIVersions: []string{"apps/v1", "shop.example.com/v1/Widget"}})
	if err != nil || again.Digest != res.Digest {
		t.Errorf("second render: digest %s, err %v; want %s", again.Digest, err, res.Digest)
	}
}

func TestHelmRenderOptions(t *testing.T) {
	tests := map[string]struct {
		app   string
		opts  Options
		check func(t *testing.T, res *Result)
	}{
		"HPA by capabilities and no replicas": {
			app:  "helm:\n  path: charts/shop\n  values: {autoscaling: {enabled: true}}\n",
			opts: Options{APIVersions: []string{"autoscaling/v1"}},
			check: func(t *testing.T, res *Result) {
				hpa := find(res.Objects, "HorizontalPodAutoscaler", "web-shop")
				if hpa == nil || hpa.GetAPIVersion() != "autoscaling/v1" {
					t.Fatalf("HPA = %v, want autoscaling/v1 (the cluster serves no v2)", hpa)
				}
				if _, found, _ := unstructured.NestedFieldNoCopy(find(res.Objects, "Deployment", "web-shop").Object, "spec", "replicas"); found {
					t.Error("Deployment sets replicas although the HPA owns them")
				}
			},
		},
		"skipCRDs and subchart disabled and release name": {
			app: "helm:\n  path: charts/shop\n  skipCRDs: true\n  releaseName: store\n  values: {cache: {enabled: false}}\n",
			check: func(t *testing.T, res *Result) {
				if find(res.Objects, "CustomResourceDefinition", "widgets.shop.example.com") != nil || find(res.Objects, "Service", "store-cache") != nil {
					t.Error("CRD or disabled subchart rendered")
				}
				if find(res.Objects, "Deployment", "store-shop") == nil {
					t.Error("release name not used")
				}
			},
		},
		"includeTests": {
			app: "helm:\n  path: charts/shop\n  includeTests: true\n",
			check: func(t *testing.T, res *Result) {
				last := res.Hooks[len(res.Hooks)-1]
				if len(res.Hooks) != 3 || last.Object.GetKind() != "Pod" || last.Phase != HookPost {
					t.Errorf("hooks = %+v, want the test Pod as a post hook", res.Hooks)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			root := newHelmRepo(t, tc.app, nil)
			res, err := renderApp(t, root, "web", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, res)
		})
	}
}

func TestHelmRenderErrors(t *testing.T) {
	tests := map[string]struct {
		app   string
		files map[string]string
		opts  Options
		want  string
	}{
		"schema rejects a value": {
			app:  "helm:\n  path: charts/shop\n  values: {replicaCount: \"two\"}\n",
			want: `render app "web" for cluster "test": chart shop: values do not match values.schema.json: values.replicaCount: got string, want integer`,
		},
		"subchart schema": {
			app:  "helm:\n  path: charts/shop\n  values: {cache: {port: 70000}}\n",
			want: "chart cache: values do not match charts/cache/values.schema.json: values.port: maximum: got 70,000, want 65,535",
		},
		"schema ref to the agent's disk": {
			app:   "helm:\n  path: charts/shop\n",
			files: map[string]string{"charts/shop/values.schema.json": `{"$ref": "file:///etc/passwd"}`},
			want:  `$ref "file:///etc/passwd": schemas may only refer inside values.schema.json`,
		},
		"non-deterministic template": {
			app:   "helm:\n  path: charts/shop\n",
			files: map[string]string{"charts/shop/templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: pw}\nstringData: {pw: {{ randAlphaNum 16 | quote }}}\n"},
			want:  "chart shop: template shop/templates/secret.yaml renders differently each time",
		},
		"kustomization beside without the chart": {
			app:   "helm:\n  path: charts/shop\n",
			files: map[string]string{"apps/web/kustomization.yaml": "resources: []\n"},
			want:  "apps/web/kustomization.yaml: resources: does not list chart.rendered.yaml",
		},
		"missing chart dir": {
			app:  "helm:\n  path: charts/nope\n",
			want: "apps/web/app.yaml: helm.path: chart directory charts/nope:",
		},
		"missing subchart": {
			app:   "helm:\n  path: charts/shop\n",
			files: map[string]string{"charts/shop/Chart.yaml": "apiVersion: v2\nname: shop\nversion: 1.0.0\ndependencies: [{name: db, version: 1.0.0}]\n"},
			want:  "dependencies db are in Chart.yaml but not in charts/",
		},
		"kubeVersion incompatible": {
			app:  "helm:\n  path: charts/shop\n",
			opts: Options{KubeVersion: "v1.19.0"},
			want: "chart shop requires Kubernetes >=1.20.0-0; the cluster runs v1.19.0",
		},
		"undefined variable in values": {
			app:  "helm:\n  path: charts/shop\n  values: {greeting: \"${NOPE}\"}\n",
			want: `apps/web/app.yaml: helm.values: undefined variable "NOPE"`,
		},
		"values file missing": {
			app:  "helm:\n  path: charts/shop\n  valuesFiles: [\"apps/web/v-${CLUSTER_NAME}.yaml\"]\n",
			want: "apps/web/app.yaml: helm.valuesFiles[0]:",
		},
		"values file path leaves the repo after substitution": {
			app:   "helm:\n  path: charts/shop\n  valuesFiles: [\"apps/${up}/x.yaml\"]\n",
			files: map[string]string{"clusters/test/cluster.yaml": "vars: {up: \"../..\"}\n"},
			want:  `helm.valuesFiles[0]: "apps/../../x.yaml": must be a clean path`,
		},
		"template error": {
			app:   "helm:\n  path: charts/shop\n",
			files: map[string]string{"charts/shop/templates/bad.yaml": "{{ required \"set foo\" .Values.foo }}\n"},
			want:  "set foo",
		},
		"remote chart without fetcher": {
			app:  "helm:\n  oci: oci://registry.example.com/charts/shop\n",
			want: "chart oci://registry.example.com/charts/shop:1.0.0: remote charts are not fetched here",
		},
		"remote version a range after substitution": {
			app:   "helm:\n  repo: https://charts.example.com\n  chart: shop\n",
			files: map[string]string{"clusters/test/apps.yaml": "apps:\n  - name: web\n    version: \"1.0\"\n"},
			want:  `apps/web/app.yaml: helm.version: "1.0" (from "${APP_VERSION}") must be one exact semantic version`,
		},
		"symlink out of the repository": {
			app:   "helm:\n  path: charts/shop\n",
			files: map[string]string{"charts/shop/templates/x.yaml": "@symlink:/etc/hostname"},
			want:  "charts/shop/templates/x.yaml",
		},
		"not a CRD in crds/": {
			app:   "helm:\n  path: charts/shop\n",
			files: map[string]string{"charts/shop/crds/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"},
			want:  "only CustomResourceDefinitions may be in crds/",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			links := map[string]string{}
			files := map[string]string{}
			for k, v := range tc.files {
				if target, ok := strings.CutPrefix(v, "@symlink:"); ok {
					links[k] = target
					continue
				}
				files[k] = v
			}
			root := newHelmRepo(t, tc.app, nil)
			for k, v := range files {
				writeFile(t, filepath.Join(root, k), v)
			}
			for k, target := range links {
				if err := os.Symlink(target, filepath.Join(root, k)); err != nil {
					t.Fatal(err)
				}
			}
			_, err := renderApp(t, root, "web", tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

// fetcherFunc adapts a function to ChartFetcher.
type fetcherFunc func(ctx context.Context, ref chart.Ref) ([]byte, error)

func (f fetcherFunc) Fetch(ctx context.Context, ref chart.Ref) ([]byte, error) { return f(ctx, ref) }

func TestHelmRenderRemoteChart(t *testing.T) {
	archive := func(version string) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for name, body := range map[string]string{
			"web/Chart.yaml":        "apiVersion: v2\nname: web\nversion: " + version + "\n",
			"web/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {v: {{ .Chart.Version | quote }}}\n",
		} {
			tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
			tw.Write([]byte(body))
		}
		tw.Close()
		zw.Close()
		return buf.Bytes()
	}
	const app = "namespace: web\nhelm:\n  repo: https://charts.example.com\n  chart: web\n"
	tests := map[string]struct {
		app     string // default app
		fetch   fetcherFunc
		want    string
		permErr bool
	}{
		"verify reaches the fetcher and its failure is permanent": {
			app: app + "  verify: true\n",
			fetch: func(_ context.Context, ref chart.Ref) ([]byte, error) {
				if !ref.Verify {
					return archive(ref.Version), nil
				}
				return nil, &chart.VerifyError{Ref: ref, Reason: chart.ReasonUnknownKey, Err: errors.New("signature made by unknown entity")}
			},
			want: "verify chart https://charts.example.com web 1.0.0: signed by a key that is not in the keyring", permErr: true,
		},
		"fetched and rendered": {fetch: func(_ context.Context, ref chart.Ref) ([]byte, error) { return archive(ref.Version), nil }},
		"archive of another version": {
			fetch: func(context.Context, chart.Ref) ([]byte, error) { return archive("9.9.9"), nil },
			want:  "chart https://charts.example.com web 1.0.0: the archive holds chart web 9.9.9, not web 1.0.0", permErr: true,
		},
		"fetch error is retried and not permanent": {
			fetch: func(_ context.Context, ref chart.Ref) ([]byte, error) {
				return nil, &chart.FetchError{Ref: ref, Err: errors.New("connection refused")}
			},
			want: "fetch chart https://charts.example.com web 1.0.0: connection refused",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := app
			if tc.app != "" {
				a = tc.app
			}
			root := newHelmRepo(t, a, nil)
			res, err := renderApp(t, root, "web", Options{Charts: tc.fetch})
			if tc.want == "" {
				if err != nil || len(res.Objects) != 1 || res.Objects[0].Object["data"].(map[string]any)["v"] != "1.0.0" {
					t.Fatalf("res %+v, err %v", res, err)
				}
				return
			}
			var re *Error
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &re) || re.Permanent() != tc.permErr {
				t.Fatalf("err = %v (permanent %v), want %q (permanent %v)", err, re != nil && re.Permanent(), tc.want, tc.permErr)
			}
		})
	}
}
