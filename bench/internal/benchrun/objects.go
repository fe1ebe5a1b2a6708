package benchrun

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/outpost-gitops/outpost/internal/localk8s"
)

// configMaps returns n ConfigMaps in ns, each carrying about size bytes of data.
func configMaps(ns string, n, size int) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, n)
	for i := range n {
		out = append(out, configMap(ns, fmt.Sprintf("cm-%04d", i), size, i))
	}
	return out
}

func configMap(ns, name string, size, seed int) *unstructured.Unstructured {
	payload := strings.Repeat(fmt.Sprintf("%08d", seed), max(size/8, 1))
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"data":     map[string]any{"payload": payload[:max(size, 1)]},
	}}
}

// headlessService returns a Service without a cluster IP: a benchmark creates more
// Services than the testbed's service IP range holds.
func headlessService(ns, name string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Service",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"clusterIP": "None",
			"selector":  map[string]any{"app": name},
			"ports":     []any{map[string]any{"name": "http", "port": int64(80)}},
		},
	}}
}

// appObjects returns one app's objects in ns: ConfigMaps and Services, alternating.
func appObjects(ns string, n int) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, n)
	for i := range n {
		if i%2 == 0 {
			out = append(out, configMap(ns, fmt.Sprintf("cm-%d", i), 256, i))
		} else {
			out = append(out, headlessService(ns, fmt.Sprintf("svc-%d", i)))
		}
	}
	return out
}

// deepCopy copies objs, so that a tool mutating them (ssa sorts and edits) does not
// change what the next tool gets.
func deepCopy(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

// createNamespaces creates the namespaces names (existing ones are fine).
func createNamespaces(ctx context.Context, c client.Client, names ...string) error {
	for _, name := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create namespace %s: %w", name, err)
		}
	}
	return nil
}

// countedClient returns a client of cluster whose requests req records, and one that
// is not counted.
func countedClient(cluster *localk8s.Cluster, req *localk8s.Requests) (counted, plain client.Client, err error) {
	cfg := cluster.RESTConfig()
	cfg.Wrap(req.Wrap)
	if counted, err = client.New(cfg, client.Options{}); err != nil {
		return nil, nil, fmt.Errorf("client for %s: %w", cluster.Name(), err)
	}
	if plain, err = client.New(cluster.RESTConfig(), client.Options{}); err != nil {
		return nil, nil, fmt.Errorf("client for %s: %w", cluster.Name(), err)
	}
	return counted, plain, nil
}

// mixedSet sizes the mixed apply workload: Deployments, headless Services,
// ConfigMaps, and custom resources of one CRD.
type mixedSet struct {
	deployments, services, configMaps, customResources int
}

func (m mixedSet) String() string {
	return fmt.Sprintf("%d Deployments + %d Services + %d ConfigMaps (2 KB) + 1 CRD + %d CRs",
		m.deployments, m.services, m.configMaps, m.customResources)
}

// mixedObjects returns the mixed workload in ns: a CRD of group (cluster-scoped; a
// group unique per apply, so that every first apply creates and waits for its CRD),
// then Deployments, Services, ConfigMaps and the CRD's custom resources.
func mixedObjects(ns, group string, m mixedSet) []*unstructured.Unstructured {
	out := []*unstructured.Unstructured{widgetCRD(group)}
	for i := range m.deployments {
		out = append(out, deployment(ns, fmt.Sprintf("web-%03d", i), i))
	}
	for i := range m.services {
		out = append(out, headlessService(ns, fmt.Sprintf("svc-%03d", i)))
	}
	for i := range m.configMaps {
		out = append(out, configMap(ns, fmt.Sprintf("cm-%03d", i), throughputObjectBytes, i))
	}
	for i := range m.customResources {
		out = append(out, widget(ns, group, fmt.Sprintf("widget-%03d", i), i))
	}
	return out
}

// deployment returns a one-replica Deployment (api-mode testbeds run no
// controllers: it is stored, not rolled out).
func deployment(ns, name string, seed int) *unstructured.Unstructured {
	labels := map[string]any{"app": name}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"replicas": int64(1),
			"selector": map[string]any{"matchLabels": labels},
			"template": map[string]any{
				"metadata": map[string]any{"labels": labels},
				"spec": map[string]any{"containers": []any{map[string]any{
					"name": "web", "image": fmt.Sprintf("nginx:1.27.%d", seed%10),
					"ports":     []any{map[string]any{"name": "http", "containerPort": int64(80)}},
					"env":       []any{map[string]any{"name": "INDEX", "value": fmt.Sprint(seed)}},
					"resources": map[string]any{"requests": map[string]any{"cpu": "10m", "memory": "16Mi"}},
				}}},
			},
		},
	}}
}

// widgetKind is the kind of the benchmark's custom resources; its plural is widgets.
const widgetKind = "Widget"

// widgetCRD returns a namespaced CRD of kind Widget in group, version v1.
func widgetCRD(group string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
		"metadata": map[string]any{"name": "widgets." + group},
		"spec": map[string]any{
			"group": group,
			"scope": "Namespaced",
			"names": map[string]any{"plural": "widgets", "singular": "widget", "kind": widgetKind, "listKind": widgetKind + "List"},
			"versions": []any{map[string]any{
				"name": "v1", "served": true, "storage": true,
				"schema": map[string]any{"openAPIV3Schema": map[string]any{
					"type": "object",
					"properties": map[string]any{"spec": map[string]any{
						"type": "object",
						"properties": map[string]any{
							"size":  map[string]any{"type": "integer"},
							"color": map[string]any{"type": "string"},
							"tags":  map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
						},
					}},
				}},
			}},
		},
	}}
}

// widget returns a custom resource of widgetCRD(group).
func widget(ns, group, name string, seed int) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": group + "/v1", "kind": widgetKind,
		"metadata": map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"size":  int64(seed),
			"color": []string{"red", "green", "blue"}[seed%3],
			"tags":  []any{"bench", fmt.Sprintf("n%d", seed)},
		},
	}}
}

// isCRD says whether o is a CustomResourceDefinition.
func isCRD(o *unstructured.Unstructured) bool {
	gvk := o.GroupVersionKind()
	return gvk.Group == "apiextensions.k8s.io" && gvk.Kind == "CustomResourceDefinition"
}

// splitCRDs separates the CRDs of objs from the other objects.
func splitCRDs(objs []*unstructured.Unstructured) (crds, rest []*unstructured.Unstructured) {
	for _, o := range objs {
		if isCRD(o) {
			crds = append(crds, o)
		} else {
			rest = append(rest, o)
		}
	}
	return crds, rest
}
