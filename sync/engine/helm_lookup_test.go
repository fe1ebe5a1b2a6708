package engine

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/outpost-gitops/outpost/sync/render"
)

// lookupRepo is one Helm app "web" whose ConfigMap carries the password of the
// Secret .Values.secret in .Values.ns (default: the app's namespace), read with
// lookup, or "none".
var lookupRepo = map[string]string{
	"clusters/dev/apps.yaml": "apps:\n  - name: web\n    version: \"1.0.0\"\n",
	"apps/web/app.yaml":      "namespace: $NS\nhelm:\n  path: charts/app\n  lookup: true\n",
	"charts/app/Chart.yaml":  "apiVersion: v2\nname: app\nversion: 0.1.0\n",
	"charts/app/values.yaml": "secret: db\nns: \"\"\n",
	"charts/app/templates/cm.yaml": `{{- $s := lookup "v1" "Secret" (.Values.ns | default .Release.Namespace) .Values.secret }}
apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data:
  password: {{ if $s }}{{ index $s.data "password" | b64dec | quote }}{{ else }}none{{ end }}
`,
}

// withLookup gives the fixture's renders the agent's lookup: a dynamic client and a
// discovery-backed RESTMapper on the test cluster.
func withLookup(t *testing.T, f *fixture) {
	t.Helper()
	cfg := env.RESTConfig()
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfigAndClient(cfg, hc)
	if err != nil {
		t.Fatal(err)
	}
	f.eng.cfg.Render.Lookup = render.NewClusterReader(dyn, mapper)
}

func (f *fixture) putSecret(t *testing.T, ns, name, password string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: map[string]string{"password": password}}
	if _, err := f.cs.CoreV1().Secrets(ns).Create(t.Context(), s, metav1.CreateOptions{}); err != nil {
		if _, err := f.cs.CoreV1().Secrets(ns).Update(t.Context(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestHelmLookupReusesLiveSecret: with helm.lookup the chart reads a Secret of the
// app's namespace; an unchanged cluster and repository make the next sync a no-op
// with the same digest, and a changed Secret a new render.
func TestHelmLookupReusesLiveSecret(t *testing.T) {
	f := newFixture(t)
	withLookup(t, f)
	f.write(t, lookupRepo)
	f.putSecret(t, f.ns, "db", "s3cret")

	web := appByName(f.sync(t), "web")
	if web.Phase != PhaseSynced {
		t.Fatalf("web = %s %+v", web.Phase, web.Error)
	}
	if got := f.configMap(t, "web").Data["password"]; got != "s3cret" {
		t.Fatalf("password = %q, want the live Secret's s3cret", got)
	}
	digest := web.Digest

	f.req.Reset()
	again := appByName(f.sync(t), "web")
	if again.Phase != PhaseSynced || again.Digest != digest {
		t.Errorf("second sync: %s, digest %s, want Synced with the same digest %s", again.Phase, again.Digest, digest)
	}
	if writes, dryRuns, _ := f.req.Counts(); writes != 0 || dryRuns != 0 {
		t.Errorf("unchanged sync made %d writes %v and %d dry-runs %v, want none", writes, f.req.Writes(), dryRuns, f.req.DryRuns())
	}

	// The Secret is rotated outside Outpost: the next render reads the new one.
	f.putSecret(t, f.ns, "db", "rotated")
	rotated := appByName(f.sync(t), "web")
	if rotated.Phase != PhaseSynced || rotated.Digest == digest {
		t.Errorf("after rotation: %s, digest %s, want Synced with a new digest", rotated.Phase, rotated.Digest)
	}
	if got := f.configMap(t, "web").Data["password"]; got != "rotated" {
		t.Errorf("password = %q, want rotated", got)
	}
}

// TestHelmLookupScope: a lookup outside the app's namespace fails the render naming
// the app, kind, namespace and template, and applies nothing; without helm.lookup the
// same chart sees lookup empty.
func TestHelmLookupScope(t *testing.T) {
	tests := map[string]struct {
		appYAML      string
		wantPassword string
		wantErr      []string
	}{
		"another namespace is refused": {
			appYAML: "namespace: $NS\nhelm:\n  path: charts/app\n  lookup: true\n  values: {ns: $NS-other}\n",
			wantErr: []string{"app/templates/cm.yaml", "app web: lookup of v1 Secret in namespace $NS-other refused", "only in the app's namespace $NS"},
		},
		"lookup off is empty": {
			appYAML:      "namespace: $NS\nhelm:\n  path: charts/app\n",
			wantPassword: "none",
		},
		"a missing Secret is empty": {
			appYAML:      "namespace: $NS\nhelm:\n  path: charts/app\n  lookup: true\n  values: {secret: missing}\n",
			wantPassword: "none",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			withLookup(t, f)
			f.write(t, lookupRepo)
			f.write(t, map[string]string{"apps/web/app.yaml": tc.appYAML})
			f.putSecret(t, f.ns, "db", "s3cret")
			other := f.ns + "-other"
			if _, err := f.cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = f.cs.CoreV1().Namespaces().Delete(t.Context(), other, metav1.DeleteOptions{}) })
			f.putSecret(t, other, "db", "theirs")

			web := appByName(f.sync(t), "web")
			if tc.wantErr != nil {
				if web.Phase != PhaseFailed || web.Error == nil || web.Error.Stage != StageRender {
					t.Fatalf("web = %s %+v, want a render failure", web.Phase, web.Error)
				}
				for _, w := range tc.wantErr {
					if w = strings.ReplaceAll(w, "$NS", f.ns); !strings.Contains(web.Error.Message, w) {
						t.Errorf("error %q\nwant it to contain %q", web.Error.Message, w)
					}
				}
				if f.configMap(t, "web") != nil {
					t.Error("the ConfigMap was applied although the render failed")
				}
				return
			}
			if web.Phase != PhaseSynced {
				t.Fatalf("web = %s %+v", web.Phase, web.Error)
			}
			if got := f.configMap(t, "web").Data["password"]; got != tc.wantPassword {
				t.Errorf("password = %q, want %q", got, tc.wantPassword)
			}
		})
	}
}

// TestHelmReleaseIsUpgradeOnceInstalled: the first sync of a Helm app renders as an
// install, the next ones (the app has an inventory) as an upgrade; the digest changes
// once, then an unchanged sync writes nothing.
func TestHelmReleaseIsUpgradeOnceInstalled(t *testing.T) {
	f := newFixture(t)
	f.write(t, lookupRepo)
	f.write(t, map[string]string{
		"apps/web/app.yaml":            "namespace: $NS\nhelm:\n  path: charts/app\n",
		"charts/app/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {install: {{ .Release.IsInstall | quote }}, upgrade: {{ .Release.IsUpgrade | quote }}}\n",
	})
	want := func(res *ClusterResult, install, upgrade string) string {
		t.Helper()
		web := appByName(res, "web")
		if web.Phase != PhaseSynced {
			t.Fatalf("web = %s %+v", web.Phase, web.Error)
		}
		if cm := f.configMap(t, "web"); cm.Data["install"] != install || cm.Data["upgrade"] != upgrade {
			t.Errorf("IsInstall %s, IsUpgrade %s; want %s, %s", cm.Data["install"], cm.Data["upgrade"], install, upgrade)
		}
		return web.Digest
	}
	first := want(f.sync(t), "true", "false")
	second := want(f.sync(t), "false", "true")
	if first == second {
		t.Error("the digest did not change from install to upgrade")
	}
	f.req.Reset()
	if third := want(f.sync(t), "false", "true"); third != second {
		t.Errorf("digest %s, want %s: an installed app's render must be stable", third, second)
	}
	if writes, dryRuns, _ := f.req.Counts(); writes != 0 || dryRuns != 0 {
		t.Errorf("unchanged sync made %d writes %v and %d dry-runs %v, want none", writes, f.req.Writes(), dryRuns, f.req.DryRuns())
	}
}

// TestHelmListLookupIsBounded: a list lookup (empty name) is read in pages and may
// return at most Options.LookupMaxList objects; a longer list fails the render naming
// the app, the lookup and the bound, and applies nothing.
func TestHelmListLookupIsBounded(t *testing.T) {
	repo := map[string]string{
		"clusters/dev/apps.yaml": "apps:\n  - name: web\n    version: \"1.0.0\"\n",
		"apps/web/app.yaml":      "namespace: $NS\nhelm:\n  path: charts/app\n  lookup: true\n",
		"charts/app/Chart.yaml":  "apiVersion: v2\nname: app\nversion: 0.1.0\n",
		"charts/app/templates/cm.yaml": `{{- $l := lookup "v1" "Secret" .Release.Namespace "" }}
apiVersion: v1
kind: ConfigMap
metadata: {name: web}
data:
  secrets: {{ len $l.items | quote }}
`,
	}
	for name, tc := range map[string]struct {
		secrets int
		wantErr string
	}{
		"at the bound":   {secrets: 10},
		"over the bound": {secrets: 12, wantErr: "app web: lookup of v1 Secret in namespace $NS: lists more than 10 objects, the most a list lookup may return"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			withLookup(t, f)
			f.eng.cfg.Render.LookupMaxList = 10
			f.write(t, repo)
			for i := range tc.secrets {
				f.putSecret(t, f.ns, fmt.Sprintf("s%02d", i), "x")
			}
			web := appByName(f.sync(t), "web")
			if tc.wantErr != "" {
				want := strings.ReplaceAll(tc.wantErr, "$NS", f.ns)
				if web.Phase != PhaseFailed || web.Error == nil || web.Error.Stage != StageRender || !strings.Contains(web.Error.Message, want) {
					t.Fatalf("web = %s %+v, want a render failure containing %q", web.Phase, web.Error, want)
				}
				if f.configMap(t, "web") != nil {
					t.Error("the ConfigMap was applied although the render failed")
				}
				return
			}
			if web.Phase != PhaseSynced {
				t.Fatalf("web = %s %+v", web.Phase, web.Error)
			}
			if got := f.configMap(t, "web").Data["secrets"]; got != fmt.Sprint(tc.secrets) {
				t.Errorf("the chart saw %s Secrets, want %d", got, tc.secrets)
			}
		})
	}
}
