package benchrun

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/outpost-gitops/outpost/internal/localk8s"
	"github.com/outpost-gitops/outpost/sync/apply"
)

const (
	// throughputConcurrency is the objects in flight for Outpost and the raw loop.
	throughputConcurrency = 16
	// throughputObjectBytes is the data size of each ConfigMap (Argo CD's workload).
	throughputObjectBytes = 2048
	// rawEstablishedPoll is how often the raw loop reads its CRDs until Established.
	rawEstablishedPoll = 20 * time.Millisecond
	// crdWaitTimeout bounds every tool's wait for a CRD to be Established.
	crdWaitTimeout = 60 * time.Second
)

// applier is one tool under test: it applies objs, all in namespace ns (CRDs
// aside); again is set for the re-apply of the same objects.
type applier struct {
	name  string
	apply func(ctx context.Context, ns string, objs []*unstructured.Unstructured, again bool) error
}

// workload is one set of objects applied by every tool.
type workload struct {
	// prefix starts its figures' names ("" for the ConfigMaps, whose names predate the
	// mixed set) and its namespaces.
	prefix string
	// objects returns the workload for namespace ns; tag is unique per tool and
	// repetition (for cluster-scoped names).
	objects func(ns, tag string) []*unstructured.Unstructured
}

// applyThroughput measures applying N ConfigMaps of 2 KB, and a mixed set with a
// CRD and its custom resources, first apply (create) and re-apply (unchanged), for
// Outpost's sync/apply, kubectl apply --server-side and a raw concurrent
// server-side-apply PATCH loop, interleaved on one apiserver.
func applyThroughput(ctx context.Context, e *runEnv) (_ *Result, err error) {
	sc := e.scale
	res := &Result{
		Name: "apply-throughput",
		Description: "Wall time to apply N ConfigMaps of 2 KB into an empty namespace (first apply) and again " +
			"unchanged (re-apply). outpost: sync/apply SyncApp (inventory, plan, staged apply, concurrency 16). " +
			"kubectl: the testbed's kubectl `apply --server-side --field-manager=kubectl-bench -f <dir>` " +
			"(one file per object; process start and discovery included). raw: a concurrent server-side-apply " +
			"PATCH per object (dynamic client, concurrency 16), the floor the apiserver allows. Each repetition " +
			"uses fresh namespaces; the tools' order rotates per repetition. " +
			"mixed: the same for Deployments, headless Services, ConfigMaps, one namespaced CRD (a group unique " +
			"per tool and repetition, so every first apply creates it) and its custom resources; every tool " +
			"applies the CRD first, waits until it is Established, then applies the rest. outpost: one SyncApp of " +
			"all objects (its stages do this, polling the CRD every 50 ms, its default). kubectl, first apply: " +
			"`apply --server-side -f <crds>`, `kubectl wait --for=condition=Established crd/...`, " +
			"`apply --server-side -f <rest>` (three processes: one apply of all fails, the CRs' kind is not served " +
			"yet); re-apply: one `apply --server-side -f <all>` (the CRD is served by then). raw: PATCH the CRD, " +
			"GET it every 20 ms until Established, then PATCH the rest (kinds resolved with a discovery RESTMapper, retried every 20 ms until a new kind is served).",
		Scale: fmt.Sprintf("%d ConfigMaps × 2 KB; mixed: %s; %d repetitions", sc.throughputObjects, sc.mixed, sc.throughputReps),
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
	// The raw loop's own RESTMapper, warmed with the built-in kinds: it resolves a
	// kind once, as a controller would.
	rawClient, err := client.New(cluster.RESTConfig(), client.Options{})
	if err != nil {
		return res, fmt.Errorf("client: %w", err)
	}
	mapper := rawClient.RESTMapper()
	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "ConfigMap"}, {Version: "v1", Kind: "Service"}, {Group: "apps", Version: "v1", Kind: "Deployment"},
		{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"},
	} {
		if _, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version); err != nil {
			return res, fmt.Errorf("discover %s: %w", gvk, err)
		}
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
		{name: "outpost", apply: func(ctx context.Context, ns string, objs []*unstructured.Unstructured, _ bool) error {
			r, err := syncer.SyncApp(ctx, ns, ownedBy(ns, objs), apply.Options{})
			if err != nil {
				return err
			}
			if f := r.Changes.Failed(); len(f) > 0 {
				return fmt.Errorf("%d objects failed, first: %s", len(f), f[0].Error)
			}
			return nil
		}},
		{name: "kubectl", apply: func(ctx context.Context, ns string, objs []*unstructured.Unstructured, again bool) error {
			dir := filepath.Join(work, ns, "first")
			if again {
				dir = filepath.Join(work, ns, "again")
			}
			return kubectlApply(ctx, cluster, dir, objs, !again)
		}},
		{name: "raw", apply: func(ctx context.Context, ns string, objs []*unstructured.Unstructured, _ bool) error {
			return rawApply(ctx, dyn, mapper, objs)
		}},
	}
	workloads := []workload{
		{objects: func(ns, _ string) []*unstructured.Unstructured {
			return configMaps(ns, sc.throughputObjects, throughputObjectBytes)
		}},
		{prefix: "mixed", objects: func(ns, tag string) []*unstructured.Unstructured {
			return mixedObjects(ns, tag+".bench.outpost.test", sc.mixed)
		}},
	}
	for _, w := range workloads {
		first, again, err := measureWorkload(ctx, e, c, tools, w)
		if err != nil {
			return res, err
		}
		name := func(s string) string {
			if w.prefix == "" {
				return s
			}
			return w.prefix + ": " + s
		}
		for _, t := range tools {
			res.Figures = append(res.Figures, figure(name(t.name+" first apply"), "ms", millis(first[t.name])))
		}
		for _, t := range tools {
			res.Figures = append(res.Figures, figure(name(t.name+" re-apply"), "ms", millis(again[t.name])))
		}
		target := "≤ 0.5×"
		if w.prefix != "" {
			target = "" // the design brief's target is for 1000 objects
		}
		res.compare(name("outpost first apply"), name("kubectl first apply"), target)
		res.compare(name("outpost first apply"), name("raw first apply"), "")
		res.compare(name("outpost re-apply"), name("kubectl re-apply"), target)
		res.compare(name("outpost re-apply"), name("raw re-apply"), "")
	}
	res.Notes = append(res.Notes, "Outpost's re-apply skips objects whose hash and resourceVersion match its records "+
		"(one LIST, no PATCH); kubectl and the raw loop send every object again.")
	res.Notes = append(res.Notes, "mixed: Outpost waits for its CRD with kstatus polls every 50 ms (apply.Config.WaitInterval's "+
		"default); the raw loop reads it every 20 ms and kubectl wait watches it. The CRD, Namespace and other "+
		"cluster-scoped objects go in Outpost's first stage, everything else after the wait.")
	return res, nil
}

// measureWorkload applies w with every tool, sc.throughputReps times in fresh
// namespaces, the tools' order rotating, and returns each tool's first-apply and
// re-apply times.
func measureWorkload(ctx context.Context, e *runEnv, c client.Client, tools []applier, w workload) (first, again map[string][]time.Duration, err error) {
	first, again = map[string][]time.Duration{}, map[string][]time.Duration{}
	for rep := range e.scale.throughputReps {
		for k := range tools {
			t := tools[(rep+k)%len(tools)]
			tag := fmt.Sprintf("%s-%d", t.name, rep)
			ns := "apply-" + tag
			if w.prefix != "" {
				ns = "apply-" + w.prefix + "-" + tag
			}
			if err := createNamespaces(ctx, c, ns); err != nil {
				return nil, nil, err
			}
			objs := w.objects(ns, tag)
			for i, phase := range []map[string][]time.Duration{first, again} {
				start := time.Now()
				if err := t.apply(ctx, ns, deepCopy(objs), i == 1); err != nil {
					return nil, nil, fmt.Errorf("%s apply into %s: %w", t.name, ns, err)
				}
				phase[t.name] = append(phase[t.name], time.Since(start))
			}
			e.log.Debug("applied", "workload", w.prefix, "tool", t.name, "rep", rep, "first", first[t.name][rep], "again", again[t.name][rep])
		}
	}
	return first, again, nil
}

// kubectlApply writes objs into dir, one file each, and runs the testbed's kubectl
// apply --server-side on it. With crdsFirst, CRDs are applied first from their own
// directory and waited for until Established, as one must before their custom
// resources can be applied.
func kubectlApply(ctx context.Context, cluster *localk8s.Cluster, dir string, objs []*unstructured.Unstructured, crdsFirst bool) error {
	crds, rest := splitCRDs(objs)
	if !crdsFirst || len(crds) == 0 {
		return kubectlApplyDir(ctx, cluster, dir, objs)
	}
	if err := kubectlApplyDir(ctx, cluster, filepath.Join(dir, "crds"), crds); err != nil {
		return err
	}
	args := []string{"wait", "--for=condition=Established", fmt.Sprintf("--timeout=%s", crdWaitTimeout)}
	for _, o := range crds {
		args = append(args, "crd/"+o.GetName())
	}
	if err := kubectl(ctx, cluster, args...); err != nil {
		return err
	}
	return kubectlApplyDir(ctx, cluster, filepath.Join(dir, "rest"), rest)
}

// kubectlApplyDir writes objs into dir, one file each, and applies the directory.
func kubectlApplyDir(ctx context.Context, cluster *localk8s.Cluster, dir string, objs []*unstructured.Unstructured) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("kubectl manifests %s: %w", dir, err)
	}
	for _, o := range objs {
		data, err := yaml.Marshal(o.Object)
		if err != nil {
			return fmt.Errorf("encode %s: %w", o.GetName(), err)
		}
		file := strings.ToLower(o.GetKind()) + "-" + o.GetName() + ".yaml"
		if err := os.WriteFile(filepath.Join(dir, file), data, 0o644); err != nil {
			return fmt.Errorf("write manifest of %s: %w", o.GetName(), err)
		}
	}
	return kubectl(ctx, cluster, "apply", "--server-side", "--field-manager=kubectl-bench", "-f", dir)
}

// kubectl runs the testbed's kubectl with args against cluster.
func kubectl(ctx context.Context, cluster *localk8s.Cluster, args ...string) error {
	cmd := exec.CommandContext(ctx, cluster.Binaries().Kubectl, append([]string{"--kubeconfig", cluster.KubeconfigPath()}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, lastLines(out.String(), 5))
	}
	return nil
}

// rawApply sends one server-side-apply PATCH per object, throughputConcurrency at
// once: CRDs first, then (once they are Established) the rest.
func rawApply(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, objs []*unstructured.Unstructured) error {
	crds, rest := splitCRDs(objs)
	if len(crds) > 0 {
		if err := rawPatch(ctx, dyn, mapper, crds); err != nil {
			return err
		}
		for _, crd := range crds {
			if err := waitEstablished(ctx, dyn, crd.GetName()); err != nil {
				return err
			}
		}
	}
	return rawPatch(ctx, dyn, mapper, rest)
}

// rawPatch applies objs with a concurrent PATCH each.
func rawPatch(ctx context.Context, dyn dynamic.Interface, mapper meta.RESTMapper, objs []*unstructured.Unstructured) error {
	gvrs := map[schema.GroupVersionKind]*meta.RESTMapping{}
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		if gvrs[gvk] != nil {
			continue
		}
		// Discovery serves a new CRD's kind shortly after it is Established: retry
		// until it does, as Outpost's apply does.
		var m *meta.RESTMapping
		err := wait.PollUntilContextTimeout(ctx, rawEstablishedPoll, crdWaitTimeout, true, func(context.Context) (bool, error) {
			var err error
			m, err = mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
			if meta.IsNoMatchError(err) {
				return false, nil
			}
			return err == nil, err
		})
		if err != nil {
			return fmt.Errorf("resolve kind %s: %w", gvk, err)
		}
		gvrs[gvk] = m
	}
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(throughputConcurrency)
	for _, o := range objs {
		g.Go(func() error {
			m := gvrs[o.GroupVersionKind()]
			var r dynamic.ResourceInterface = dyn.Resource(m.Resource)
			if m.Scope.Name() == meta.RESTScopeNameNamespace {
				r = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
			}
			if _, err := r.Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "raw-bench", Force: true}); err != nil {
				return fmt.Errorf("apply %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
			return nil
		})
	}
	return g.Wait()
}

// waitEstablished reads CRD name every rawEstablishedPoll until it is Established.
func waitEstablished(ctx context.Context, dyn dynamic.Interface, name string) error {
	crdGVR := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	err := wait.PollUntilContextTimeout(ctx, rawEstablishedPoll, crdWaitTimeout, true, func(ctx context.Context) (bool, error) {
		crd, err := dyn.Resource(crdGVR).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
		for _, c := range conds {
			if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("wait for CRD %s to be Established: %w", name, err)
	}
	return nil
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
