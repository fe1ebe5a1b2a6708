// Package examples is a sample GitOps repository (docs/repo-layout.md); this test
// renders every app for every cluster with the real renderer and syncs both clusters
// to a real apiserver, so that the example never rots.
package examples

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/sync/apply"
	"github.com/outpost-gitops/outpost/sync/engine"
	"github.com/outpost-gitops/outpost/sync/health"
	"github.com/outpost-gitops/outpost/sync/inventory"
	"github.com/outpost-gitops/outpost/sync/render"
	"github.com/outpost-gitops/outpost/sync/repo"
)

var env *testenv.Cluster

// kubeVersion is the cluster's version Helm charts see (the agent reads it from
// discovery; without it Helm assumes v1.20, older than the greeter chart accepts).
const kubeVersion = "v1.33.0"

func TestMain(m *testing.M) {
	ctrllog.SetLogger(logr.Discard())
	testenv.RunMain(m, testenv.Options{Name: "examples"}, func(c *testenv.Cluster) { env = c })
}

// want is what each cluster of the example must get.
var want = map[string]struct {
	labels   map[string]string
	versions map[string]string // app → version
	replicas int32             // web's
	color    string            // the Widget's
}{
	"dev": {
		labels:   map[string]string{"env": "dev", "topology.kubernetes.io/region": "eu-west"},
		versions: map[string]string{"web": "1.27.3", "cache": "7.4.1", "crd-demo": "0.2.0", "greeter": "0.2.3"},
		replicas: 1, color: "blue",
	},
	"prod": {
		labels:   map[string]string{"env": "prod", "topology.kubernetes.io/region": "eu-central", "tier": "critical"},
		versions: map[string]string{"web": "1.26.2", "cache": "7.2.6", "crd-demo": "0.1.0", "greeter": "0.2.2"},
		replicas: 3, color: "green",
	},
}

// renderAll renders every app of cluster.
func renderAll(t *testing.T, cluster string) (*repo.ClusterSpec, map[string]*render.Result) {
	t.Helper()
	spec, err := repo.LoadDir(t.Context(), ".", cluster)
	if err != nil {
		t.Fatal(err)
	}
	r, err := render.New(".", render.Options{KubeVersion: kubeVersion})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*render.Result{}
	for i := range spec.Apps {
		res, err := r.Render(t.Context(), spec, &spec.Apps[i])
		if err != nil {
			t.Fatalf("render %s for %s: %v", spec.Apps[i].Name, cluster, err)
		}
		out[spec.Apps[i].Name] = res
	}
	return spec, out
}

func find(t *testing.T, res *render.Result, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range res.Objects {
		if o.GetKind() == kind && (o.GetName() == name || strings.HasPrefix(o.GetName(), name+"-")) {
			return o
		}
	}
	t.Fatalf("app %s for %s: no %s %s among %d objects", res.App, res.Cluster, kind, name, len(res.Objects))
	return nil
}

// typed converts o to T, refusing unknown fields.
func typed[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
	}
	return out
}

func TestClustersAndApps(t *testing.T) {
	clusters, err := repo.ListClustersDir(".")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(clusters, []string{"dev", "prod"}) {
		t.Fatalf("clusters %v, want [dev prod]", clusters)
	}
	for cluster, w := range want {
		spec, _ := renderAll(t, cluster)
		for k, v := range w.labels {
			if spec.Labels[k] != v {
				t.Errorf("%s: label %s = %q, want %q", cluster, k, spec.Labels[k], v)
			}
		}
		got := map[string]string{}
		for _, a := range spec.Apps {
			got[a.Name] = a.Version
		}
		if fmt.Sprint(got) != fmt.Sprint(w.versions) {
			t.Errorf("%s: apps %v, want %v", cluster, got, w.versions)
		}
	}
	if fmt.Sprint(want["dev"].versions) == fmt.Sprint(want["prod"].versions) {
		t.Error("dev and prod run the same versions")
	}
}

func TestEveryAppRendersForEveryCluster(t *testing.T) {
	for cluster, w := range want {
		t.Run(cluster, func(t *testing.T) {
			_, results := renderAll(t, cluster)
			for app, res := range results {
				for _, o := range res.Objects {
					if o.GetLabels()["app.kubernetes.io/managed-by"] != "outpost" || o.GetLabels()["outpost.dev/app"] != app {
						t.Errorf("%s %s: labels %v, want Outpost's ownership labels", o.GetKind(), o.GetName(), o.GetLabels())
					}
					data, err := o.MarshalJSON()
					if err != nil {
						t.Fatal(err)
					}
					if strings.Contains(string(data), "${") {
						t.Errorf("%s %s: an unsubstituted variable is left: %s", o.GetKind(), o.GetName(), data)
					}
					// Built-in kinds decode strictly: a misspelt field fails here.
					if typ, err := scheme.Scheme.New(o.GroupVersionKind()); err == nil {
						if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(o.Object, typ, true); err != nil {
							t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
						}
					}
				}
			}

			// web: Deployment + Service + ConfigMap, the version in the image tag.
			web := results["web"]
			dep := typed[appsv1.Deployment](t, find(t, web, "Deployment", "web"))
			if dep.Namespace != "web" || dep.Spec.Replicas == nil || *dep.Spec.Replicas != w.replicas {
				t.Errorf("web Deployment %s replicas %v, want namespace web and %d replicas", dep.Namespace, dep.Spec.Replicas, w.replicas)
			}
			if img := dep.Spec.Template.Spec.Containers[0].Image; img != "nginx:"+w.versions["web"] {
				t.Errorf("web image %q, want nginx:%s", img, w.versions["web"])
			}
			cm := typed[corev1.ConfigMap](t, find(t, web, "ConfigMap", "web-content"))
			if page := cm.Data["index.html"]; !strings.Contains(page, "Hello from "+cluster+" ("+w.labels["env"]) || !strings.Contains(page, w.versions["web"]) {
				t.Errorf("web page for %s:\n%s", cluster, page)
			}
			svc := typed[corev1.Service](t, find(t, web, "Service", "web"))
			if svc.Spec.Selector["app.kubernetes.io/name"] != dep.Spec.Template.Labels["app.kubernetes.io/name"] {
				t.Errorf("web Service selector %v does not select the Deployment's pods", svc.Spec.Selector)
			}
			find(t, web, "Namespace", "web")

			// cache: a StatefulSet whose generated ConfigMap reference follows the hash.
			cache := results["cache"]
			sts := typed[appsv1.StatefulSet](t, find(t, cache, "StatefulSet", "redis"))
			if img := sts.Spec.Template.Spec.Containers[0].Image; img != "redis:"+w.versions["cache"]+"-alpine" {
				t.Errorf("cache image %q", img)
			}
			conf := find(t, cache, "ConfigMap", "redis-config")
			if sts.Spec.Template.Spec.Volumes[0].ConfigMap.Name != conf.GetName() || conf.GetName() == "redis-config" {
				t.Errorf("StatefulSet refers to ConfigMap %s, the build made %s (hashed)", sts.Spec.Template.Spec.Volumes[0].ConfigMap.Name, conf.GetName())
			}
			if find(t, cache, "Service", "redis").GetName() != sts.Spec.ServiceName {
				t.Errorf("StatefulSet serviceName %s has no Service", sts.Spec.ServiceName)
			}

			// greeter: a Helm chart in the repository; the version is the image tag, the
			// message substituted in the values, prod scales it with an HPA (its
			// per-cluster values file) so that the Deployment leaves replicas alone.
			greeter := results["greeter"]
			gd := typed[appsv1.Deployment](t, find(t, greeter, "Deployment", "greeter"))
			if img := gd.Spec.Template.Spec.Containers[0].Image; gd.Namespace != "greeter" || img != "hashicorp/http-echo:"+w.versions["greeter"] {
				t.Errorf("greeter Deployment in %q image %q", gd.Namespace, img)
			}
			if args := strings.Join(gd.Spec.Template.Spec.Containers[0].Args, " "); !strings.Contains(args, "-text=Hello from "+cluster+" ("+w.labels["env"]+")") {
				t.Errorf("greeter args %q", args)
			}
			hpa := false
			for _, o := range greeter.Objects {
				hpa = hpa || o.GetKind() == "HorizontalPodAutoscaler"
			}
			if scaled := cluster == "prod"; hpa != scaled || (gd.Spec.Replicas == nil) != scaled {
				t.Errorf("greeter on %s: HPA %v, replicas %v", cluster, hpa, gd.Spec.Replicas)
			}

			// crd-demo: the CRD comes first in apply order, then its Widget.
			demo := results["crd-demo"]
			if demo.Objects[0].GetKind() != "CustomResourceDefinition" {
				t.Errorf("crd-demo applies %s first, want the CRD", demo.Objects[0].GetKind())
			}
			widget := find(t, demo, "Widget", "hello")
			color, _, _ := unstructured.NestedString(widget.Object, "spec", "color")
			size, _, _ := unstructured.NestedInt64(widget.Object, "spec", "size")
			if widget.GetNamespace() != "crd-demo" || color != w.color || size != 3 {
				t.Errorf("Widget %s color %q size %d, want namespace crd-demo, %s, 3", widget.GetNamespace(), color, size, w.color)
			}
		})
	}
}

// TestExamplesSyncToARealCluster syncs dev, then prod (an upgrade of every app in
// place) to a real apiserver with the sync engine: the CRD is established before the
// Widget, the Widget passes the CRD's schema, every object is accepted.
func TestExamplesSyncToARealCluster(t *testing.T) {
	c, err := client.New(env.RESTConfig(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	store := inventory.NewStore(c, inventory.StoreOptions{Namespace: env.CreateNamespace(t)})
	syncer, err := apply.New(apply.Config{Client: c, Store: store})
	if err != nil {
		t.Fatal(err)
	}
	getter, err := health.NewDynamicGetterForConfig(env.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Config{Syncer: syncer, Health: getter, Inventories: store,
		Capabilities: func(context.Context) (string, []string, error) { return kubeVersion, nil, nil }})
	if err != nil {
		t.Fatal(err)
	}
	root, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, cluster := range []string{"dev", "prod"} {
		res, err := eng.SyncCluster(context.WithoutCancel(t.Context()), engine.Request{Root: root, Revision: "0123456789abcdef0123456789abcdef01234567", Cluster: cluster})
		if err != nil {
			t.Fatalf("sync %s: %v", cluster, err)
		}
		if len(res.Apps) != len(want[cluster].versions) {
			t.Errorf("sync %s: %d apps, want %d", cluster, len(res.Apps), len(want[cluster].versions))
		}
		for _, ar := range res.Apps {
			if ar.Phase != engine.PhaseSynced {
				t.Errorf("sync %s: app %s %s: %+v", cluster, ar.App, ar.Phase, ar.Error)
			}
		}
	}
}
