package benchrun

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/internal/testenv"
	"github.com/outpost-gitops/outpost/sync/apply"
)

const (
	// throughputConcurrency is the objects in flight for Outpost and the raw loop.
	throughputConcurrency = 16
	// throughputObjectBytes is the data size of each ConfigMap (Argo CD's workload).
	throughputObjectBytes = 2048
)

// applier is one tool under test: it applies objs, all in namespace ns.
type applier struct {
	name  string
	apply func(ctx context.Context, ns string, objs []*unstructured.Unstructured) error
}

// applyThroughput measures applying N ConfigMaps of 2 KB, first apply (create) and
// re-apply (unchanged), for Outpost's sync/apply, kubectl apply --server-side and a
// raw concurrent server-side-apply PATCH loop, interleaved on one apiserver.
func applyThroughput(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	res := &Result{
		Name: "apply-throughput",
		Description: "Wall time to apply N ConfigMaps of 2 KB into an empty namespace (first apply) and again " +
			"unchanged (re-apply). outpost: sync/apply SyncApp (inventory, plan, staged apply, concurrency 16). " +
			"kubectl: the testbed's kubectl `apply --server-side --field-manager=kubectl-bench -f <dir>` " +
			"(one file per object; process start and discovery included). raw: a concurrent server-side-apply " +
			"PATCH per object (dynamic client, concurrency 16), the floor the apiserver allows. Each repetition " +
			"uses fresh namespaces; the tools' order rotates per repetition.",
		Scale: fmt.Sprintf("%d ConfigMaps × 2 KB, %d repetitions", sc.throughputObjects, sc.throughputReps),
	}
	cluster, err := e.startCluster(ctx, "bench-apply")
	if err != nil {
		return res, err
	}
	defer func() { _ = cluster.Stop() }()
	c, err := client.New(cluster.RESTConfig(), client.Options{})
	if err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cluster.RESTConfig())
	if err != nil {
		return res, fmt.Errorf("dynamic client: %w", err)
	}
	syncer, err := apply.New(apply.Config{Client: c, Concurrency: throughputConcurrency})
	if err != nil {
		return res, fmt.Errorf("outpost syncer: %w", err)
	}
	work, err := os.MkdirTemp("", "outpost-bench-kubectl-")
	if err != nil {
		return res, fmt.Errorf("kubectl work directory: %w", err)
	}
	defer func() { _ = os.RemoveAll(work) }()

	tools := []applier{
		{name: "outpost", apply: func(ctx context.Context, ns string, objs []*unstructured.Unstructured) error {
			r, err := syncer.SyncApp(ctx, ns, objs, apply.Options{})
			if err != nil {
				return err
			}
			if f := r.Changes.Failed(); len(f) > 0 {
				return fmt.Errorf("%d objects failed, first: %s", len(f), f[0].Error)
			}
			return nil
		}},
		{name: "kubectl", apply: func(ctx context.Context, ns string, objs []*unstructured.Unstructured) error {
			return kubectlApply(ctx, cluster, filepath.Join(work, ns), objs)
		}},
		{name: "raw", apply: func(ctx context.Context, ns string, objs []*unstructured.Unstructured) error {
			return rawApply(ctx, dyn, objs)
		}},
	}
	first := map[string][]time.Duration{}
	again := map[string][]time.Duration{}
	for rep := range sc.throughputReps {
		for k := range tools {
			t := tools[(rep+k)%len(tools)]
			ns := fmt.Sprintf("apply-%s-%d", t.name, rep)
			if err := createNamespaces(ctx, c, ns); err != nil {
				return res, err
			}
			objs := configMaps(ns, sc.throughputObjects, throughputObjectBytes)
			for _, phase := range []map[string][]time.Duration{first, again} {
				start := time.Now()
				if err := t.apply(ctx, ns, deepCopy(objs)); err != nil {
					return res, fmt.Errorf("%s apply into %s: %w", t.name, ns, err)
				}
				phase[t.name] = append(phase[t.name], time.Since(start))
			}
			e.log.Debug("applied", "tool", t.name, "rep", rep, "first", first[t.name][rep], "again", again[t.name][rep])
		}
	}
	for _, t := range tools {
		res.Figures = append(res.Figures, figure(t.name+" first apply", "ms", millis(first[t.name])))
	}
	for _, t := range tools {
		res.Figures = append(res.Figures, figure(t.name+" re-apply", "ms", millis(again[t.name])))
	}
	res.compare("outpost first apply", "kubectl first apply", "≤ 0.5×")
	res.compare("outpost first apply", "raw first apply", "")
	res.compare("outpost re-apply", "kubectl re-apply", "≤ 0.5×")
	res.compare("outpost re-apply", "raw re-apply", "")
	res.Notes = append(res.Notes, "Outpost's re-apply skips objects whose hash and resourceVersion match its records "+
		"(one LIST, no PATCH); kubectl and the raw loop send every object again.")
	return res, nil
}

// kubectlApply writes objs into dir, one file each, and runs the testbed's kubectl
// apply --server-side on it.
func kubectlApply(ctx context.Context, cluster *testenv.Cluster, dir string, objs []*unstructured.Unstructured) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kubectl manifests %s: %w", dir, err)
	}
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("encode %s: %w", o.GetName(), err)
		}
		if err := os.WriteFile(filepath.Join(dir, o.GetName()+".yaml"), data, 0o644); err != nil {
			return fmt.Errorf("write manifest of %s: %w", o.GetName(), err)
		}
	}
	cmd := exec.CommandContext(ctx, cluster.Binaries().Kubectl, "--kubeconfig", cluster.KubeconfigPath(),
		"apply", "--server-side", "--field-manager=kubectl-bench", "-f", dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl apply -f %s: %w: %s", dir, err, lastLines(out.String(), 5))
	}
	return nil
}

// rawApply sends one server-side-apply PATCH per object, throughputConcurrency at once.
func rawApply(ctx context.Context, dyn dynamic.Interface, objs []*unstructured.Unstructured) error {
	gvr := schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(throughputConcurrency)
	for _, o := range objs {
		g.Go(func() error {
			_, err := dyn.Resource(gvr).Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), o,
				metav1.ApplyOptions{FieldManager: "raw-bench", Force: true})
			if err != nil {
				return fmt.Errorf("apply ConfigMap %s/%s: %w", o.GetNamespace(), o.GetName(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
