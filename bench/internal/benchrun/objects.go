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

	"github.com/outpost-gitops/outpost/internal/testenv"
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
func countedClient(cluster *testenv.Cluster, req *testenv.Requests) (counted, plain client.Client, err error) {
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
